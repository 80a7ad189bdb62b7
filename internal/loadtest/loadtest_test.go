package loadtest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsAnswers(t *testing.T) {
	srv := httptest.NewServer(Bare())
	defer srv.Close()
	res, err := Run(context.Background(), srv.URL, "", 4, 50*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.P99 < res.P50 || res.P50 <= 0 {
		t.Errorf("result %+v: want answered requests, no errors, p99 ≥ p50 > 0", res)
	}
}

func TestRunRejectsFailingTarget(t *testing.T) {
	srv := httptest.NewServer(Bare())
	srv.Close()
	if _, err := Run(context.Background(), srv.URL, "", 1, 0, 10*time.Millisecond); err == nil {
		t.Error("a closed server gave no error")
	}
}

// TestRunReusesConnections loads a handler answering a chunked body larger
// than the client's buffer and checks that every request succeeds and that
// no more connections are opened than asked for.
func TestRunReusesConnections(t *testing.T) {
	big := strings.Repeat("canopy ", 10_000) // 70 kB, sent in chunks
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		for i := 0; i < len(big); i += 4096 {
			_, _ = io.WriteString(w, big[i:min(i+4096, len(big))])
			w.(http.Flusher).Flush()
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	const conns = 3
	res, err := Run(context.Background(), srv.URL+"/x?y=1", "secret", conns, 0, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 {
		t.Errorf("result %+v: want answered requests and no errors", res)
	}
	// The probe has a connection of its own.
	if n := opened.Load(); n > conns+1 {
		t.Errorf("%d connections opened for %d requests, want at most %d", n, res.Requests, conns+1)
	}
}

func TestRunRejectsRefusingTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	if _, err := Run(context.Background(), srv.URL, "wrong", 1, 0, 10*time.Millisecond); err == nil {
		t.Error("a target answering 401 gave no error")
	}
}
