// Package loadtest measures the API's throughput and latency from outside
// the process: a closed-loop load generator (a fixed number of connections,
// each sending its next request when the last one is answered) and the
// servers it loads, a bare net/http handler and Canopy's API on a real store
// seeded with one user and 20 projects.
//
// It is a tool for make bench, not part of Canopy's binary.
package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"sync"
	"time"
)

// Result is what one load run measured.
type Result struct {
	Requests int // answered in the measured time
	Errors   int // transport errors and non-200 answers in the measured time
	Sent     int // every request, the probe and the warm-up's included
	Elapsed  time.Duration
	P50, P99 time.Duration
}

// RequestsPerSecond is the throughput of the run.
func (r Result) RequestsPerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Run sends GET url with the bearer token (if any) over conns connections
// for d, after a warm-up of warm, and measures every answered request.
//
// Each connection is a goroutine of its own writing a request prepared once
// and reading the answer with net/http's parser: no transport, pool or
// per-request goroutines between them, so that as little as possible of
// the two cores the client shares with the server goes to the client.
func Run(
	ctx context.Context, url, token string, conns int, warm, d time.Duration,
) (Result, error) {
	tg, err := newTarget(url, token)
	if err != nil {
		return Result{}, err
	}
	probe := tg.connect(ctx)
	err = probe.send()
	probe.close()
	if err != nil {
		return Result{}, fmt.Errorf("probe %s: %w", url, err)
	}
	start := time.Now()
	measureFrom, stop := start.Add(warm), start.Add(warm+d)

	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		total     = 1 // the probe
		wg        sync.WaitGroup
	)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, bad, sent := tg.load(ctx, measureFrom, stop)
			mu.Lock()
			latencies = append(latencies, mine...)
			errs += bad
			total += sent
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := summarize(latencies, errs, d)
	res.Sent = total
	return res, nil
}

// target is where the load goes and the request it sends.
type target struct {
	addr    string
	request []byte
}

func newTarget(rawURL, token string) (*target, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse target URL: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("parse target URL %q: %w", rawURL, errNotHTTP)
	}
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: canopy-loadtest\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	return &target{addr: u.Host, request: []byte(req + "\r\n")}, nil
}

// errNotHTTP refuses a target URL that is not plain http://HOST/...
var errNotHTTP = errors.New("want an http:// URL with a host")

// load sends requests over one connection, opened again after an error,
// until stop, and returns the latencies of the answers that came after
// measureFrom, the number of failures among them, and the number of
// requests sent.
func (tg *target) load(
	ctx context.Context, measureFrom, stop time.Time,
) (latencies []time.Duration, errs, sent int) {
	c := tg.connect(ctx)
	defer func() { c.close() }()
	for ; ; sent++ {
		t0 := time.Now()
		if t0.After(stop) || ctx.Err() != nil {
			return latencies, errs, sent
		}
		err := c.send()
		if err != nil {
			c.close()
			c = tg.connect(ctx)
		}
		switch {
		case t0.Before(measureFrom):
		case err != nil:
			errs++
		default:
			latencies = append(latencies, time.Since(t0))
		}
	}
}

// conn is one keep-alive connection to the target.
type conn struct {
	tg      *target
	ctx     context.Context
	nc      net.Conn
	r       *bufio.Reader
	dialErr error
}

// connect dials the target; a failure shows in the first send.
func (tg *target) connect(ctx context.Context) *conn {
	c := &conn{tg: tg, ctx: ctx}
	d := net.Dialer{Timeout: 5 * time.Second}
	c.nc, c.dialErr = d.DialContext(ctx, "tcp", tg.addr)
	if c.dialErr == nil {
		c.r = bufio.NewReaderSize(c.nc, 32<<10)
	}
	return c
}

func (c *conn) close() {
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// send makes one request and reads the whole answer, which must be 200.
func (c *conn) send() error {
	if c.dialErr != nil {
		return fmt.Errorf("connect: %w", c.dialErr)
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(c.tg.request); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("read answer: %w", err)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("answer %d: %w", resp.StatusCode, errNotOK)
	case resp.Close:
		return fmt.Errorf("answer closes the connection: %w", errNotOK)
	}
	return nil
}

// errNotOK is an answer other than a kept-alive 200.
var errNotOK = errors.New("unexpected answer")

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
