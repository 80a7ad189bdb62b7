package scrape_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
)

// TestStreamBoundsBodies: with many scrapes in flight, Stream holds at most
// MaxBodies bodies at once, and every body is still its own target's.
func TestStreamBoundsBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte(r.URL.Query().Get("n")+"\n"), 1000))
	}))
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{Concurrency: 16, MaxBodies: 2})
	var targets []source.Target
	for i := range 16 {
		n := string(rune('a' + i))
		targets = append(targets, source.Target{Node: n, URL: srv.URL + "/?n=" + n,
			Kind: source.KubeletCadvisor})
	}
	var held, peak, seen atomic.Int32
	s.Stream(context.Background(), targets, func(p source.Payload) {
		n := held.Add(1)
		defer held.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond) // let the other scrapes arrive meanwhile
		want := bytes.Repeat([]byte(p.Target.Node+"\n"), 1000)
		if p.Err != nil || !bytes.Equal(p.Body, want) {
			t.Errorf("%s: err %v, body not its own", p.Target.Node, p.Err)
		}
		seen.Add(1)
	})
	if seen.Load() != 16 {
		t.Errorf("fn saw %d targets, want 16", seen.Load())
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d bodies held at once, want at most MaxBodies 2", p)
	}
}

// TestStreamBodies: metrics bodies come as readers with the whole body,
// JSON bodies whole in Body, failures with a nil reader, and a body past
// MaxBodyBytes ends its reader with ErrBodyTooLarge, which fn returns.
func TestStreamBodies(t *testing.T) {
	metrics := strings.Repeat("container_memory_rss 1\n", 200)
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, metrics)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, metrics+metrics)
	})
	mux.HandleFunc("/summary", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"node":{}}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{MaxBodyBytes: int64(len(metrics))})
	targets := []source.Target{
		{Node: "m", URL: srv.URL + "/metrics", Kind: source.KubeletCadvisor},
		{Node: "b", URL: srv.URL + "/big", Kind: source.KubeletCadvisor},
		{Node: "s", URL: srv.URL + "/summary", Kind: source.KubeletSummary},
		{Node: "f", URL: srv.URL + "/absent", Kind: source.KubeletCadvisor},
	}
	var mu sync.Mutex
	got := map[string]string{}
	var readErr error
	s.StreamBodies(context.Background(), targets, func(p source.Payload, body io.Reader) error {
		var text string
		var err error
		switch {
		case p.Err != nil:
			text = "failed"
		case body != nil:
			var b []byte
			b, err = io.ReadAll(body)
			text = "reader:" + string(b)
		default:
			text = "body:" + string(p.Body)
		}
		mu.Lock()
		defer mu.Unlock()
		got[p.Target.Node] = text
		if p.Target.Node == "b" {
			readErr = err
		}
		return err
	})
	if got["m"] != "reader:"+metrics {
		t.Errorf("metrics target handed %.40q", got["m"])
	}
	if got["s"] != `body:{"node":{}}` || got["f"] != "failed" {
		t.Errorf("summary handed %q, failed target %q", got["s"], got["f"])
	}
	if !errors.Is(readErr, scrape.ErrBodyTooLarge) {
		t.Errorf("big body read with error %v, want ErrBodyTooLarge", readErr)
	}
}

// TestStreamBodiesHangingBodyTimesOut: a body that stops half way ends its
// reader with a deadline error, and the other targets are not delayed.
func TestStreamBodiesHangingBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "container_memory_rss 1\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "up 1\n")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	s := newScraper(t, scrape.Options{Timeout: 300 * time.Millisecond})
	targets := []source.Target{
		{Node: "hung", URL: srv.URL + "/hang", Kind: source.KubeletCadvisor},
		{Node: "ok", URL: srv.URL + "/ok", Kind: source.KubeletCadvisor},
	}
	var mu sync.Mutex
	errs := map[string]error{}
	s.StreamBodies(context.Background(), targets, func(p source.Payload, body io.Reader) error {
		_, err := io.ReadAll(body)
		mu.Lock()
		errs[p.Target.Node] = err
		mu.Unlock()
		return err
	})
	if !errors.Is(errs["hung"], context.DeadlineExceeded) {
		t.Errorf("hung body: %v, want a deadline error", errs["hung"])
	}
	if errs["ok"] != nil {
		t.Errorf("healthy target: %v", errs["ok"])
	}
}
