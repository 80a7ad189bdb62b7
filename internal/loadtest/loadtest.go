// Package loadtest measures the API's throughput and latency from outside
// the process: a closed-loop load generator (a fixed number of connections,
// each sending its next request when the last one is answered) and the
// servers it loads, a bare net/http handler and Canopy's API on a real store
// seeded with one user and 20 projects.
//
// It is a tool for make bench, not part of Canopy's binary.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Result is what one load run measured.
type Result struct {
	Requests int
	Errors   int // transport errors and non-200 answers
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// RequestsPerSecond is the throughput of the run.
func (r Result) RequestsPerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Run sends GET url with the bearer token (if any) over conns connections
// for d, after a warm-up of warm, and measures every answered request.
func Run(ctx context.Context, url, token string, conns int, warm, d time.Duration) (Result, error) {
	tr := &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	if _, err := send(ctx, client, url, token); err != nil {
		return Result{}, fmt.Errorf("probe %s: %w", url, err)
	}
	start := time.Now()
	measureFrom, stop := start.Add(warm), start.Add(warm+d)

	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		wg        sync.WaitGroup
	)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for {
				t0 := time.Now()
				if t0.After(stop) || ctx.Err() != nil {
					break
				}
				_, err := send(ctx, client, url, token)
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(latencies, errs, d), nil
}

// send makes one request and drains the answer so the connection is reused.
func send(ctx context.Context, c *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send request: %w", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("answer %d", resp.StatusCode)
	}
	return int(n), nil
}

// summarize computes throughput and percentiles.
func summarize(latencies []time.Duration, errs int, d time.Duration) Result {
	slices.Sort(latencies)
	r := Result{Requests: len(latencies), Errors: errs, Elapsed: d}
	if len(latencies) > 0 {
		r.P50 = latencies[len(latencies)*50/100]
		r.P99 = latencies[min(len(latencies)*99/100, len(latencies)-1)]
	}
	return r
}
