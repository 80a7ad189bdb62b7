package scrape_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/internal/testenv"
)

const largeFixture = "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt"

// kubelet is a stand-in kubelet: TLS, bearer token checked, bodies by path.
type kubelet struct {
	srv    *httptest.Server
	caFile string

	mu     sync.Mutex
	token  string            // the only token accepted; "" accepts any
	bodies map[string][]byte // path → body
	accept map[string]string // path → Accept header of the last request
}

func newKubelet(t *testing.T, token string, bodies map[string][]byte) *kubelet {
	t.Helper()
	k := &kubelet{token: token, bodies: bodies, accept: make(map[string]string)}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)

	// The stand-in's self-signed certificate is its own CA.
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.srv.Certificate().Raw})
	k.caFile = filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(k.caFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func (k *kubelet) serve(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	token, body, ok := k.token, k.bodies[r.URL.Path], k.bodies[r.URL.Path] != nil
	k.accept[r.URL.Path] = r.Header.Get("Accept")
	k.mu.Unlock()

	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(body)
}

func (k *kubelet) setToken(tok string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.token = tok
}

func (k *kubelet) target(kind source.Kind, path, tokenFile string) source.Target {
	return source.Target{
		Node: "node-a", URL: k.srv.URL + path, Kind: kind,
		BearerTokenFile: tokenFile, CAFile: k.caFile,
	}
}

func newScraper(t *testing.T, opts scrape.Options) *scrape.Scraper {
	t.Helper()
	s, err := scrape.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeToken(t *testing.T, path, token string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

func TestScrapeFixtureOverTLSWithToken(t *testing.T) {
	fixture := testenv.Fixture(t, largeFixture)
	summary := []byte(`{"node":{"nodeName":"node-a"},"pods":[]}`)
	k := newKubelet(t, "secret-token", map[string][]byte{
		"/metrics/cadvisor": fixture, "/stats/summary": summary,
	})
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeToken(t, tokenFile, "secret-token", time.Now())

	s := newScraper(t, scrape.Options{})
	targets := []source.Target{
		k.target(source.KubeletCadvisor, "/metrics/cadvisor", tokenFile),
		k.target(source.KubeletSummary, "/stats/summary", tokenFile),
	}
	got := s.Scrape(context.Background(), targets)

	if len(got) != 2 {
		t.Fatalf("got %d payloads, want 2", len(got))
	}
	for i, want := range [][]byte{fixture, summary} {
		p := got[i]
		if p.Err != nil {
			t.Fatalf("%s: %v", p.Target.URL, p.Err)
		}
		if !bytes.Equal(p.Body, want) {
			t.Errorf("%s: body of %d bytes differs from the %d served", p.Target.URL,
				len(p.Body), len(want))
		}
		if p.StatusCode != http.StatusOK || p.Target != targets[i] {
			t.Errorf("%s: status %d target %+v", p.Target.URL, p.StatusCode, p.Target)
		}
	}
	if !strings.HasPrefix(got[0].ContentType, "text/plain") {
		t.Errorf("content type %q not passed on", got[0].ContentType)
	}

	// Metrics endpoints negotiate text and OpenMetrics, never protobuf; the
	// summary asks for JSON.
	accept := k.accept["/metrics/cadvisor"]
	if !strings.Contains(accept, "text/plain") ||
		!strings.Contains(accept, "application/openmetrics-text") ||
		strings.Contains(accept, "protobuf") {
		t.Errorf("metrics Accept header %q", accept)
	}
	if a := k.accept["/stats/summary"]; a != "application/json" {
		t.Errorf("summary Accept header %q", a)
	}
}

func TestScrapeReusesBuffers(t *testing.T) {
	body := bytes.Repeat([]byte("container_cpu_usage_seconds_total 1\n"), 1000)
	k := newKubelet(t, "", map[string][]byte{"/metrics/cadvisor": body})
	s := newScraper(t, scrape.Options{})
	targets := []source.Target{k.target(source.KubeletCadvisor, "/metrics/cadvisor", "")}

	first := s.Scrape(context.Background(), targets)[0]
	second := s.Scrape(context.Background(), targets)[0]
	if first.Err != nil || second.Err != nil {
		t.Fatalf("errors: %v, %v", first.Err, second.Err)
	}
	if &first.Body[0] != &second.Body[0] {
		t.Error("the second cycle did not reuse the first cycle's buffer")
	}
	if !bytes.Equal(second.Body, body) {
		t.Error("reused buffer holds the wrong body")
	}
}

func TestScrapeTokenRotation(t *testing.T) {
	k := newKubelet(t, "token-one", map[string][]byte{"/metrics/cadvisor": []byte("up 1\n")})
	tokenFile := filepath.Join(t.TempDir(), "token")
	start := time.Now().Add(-time.Hour)
	writeToken(t, tokenFile, "token-one", start)

	s := newScraper(t, scrape.Options{})
	targets := []source.Target{k.target(source.KubeletCadvisor, "/metrics/cadvisor", tokenFile)}
	if p := s.Scrape(context.Background(), targets)[0]; p.Err != nil {
		t.Fatalf("first token: %v", p.Err)
	}

	// The API server rotated the token: the kubelet accepts only the new one,
	// and until the file is rewritten the scrape is refused.
	k.setToken("token-two")
	p := s.Scrape(context.Background(), targets)[0]
	if !errors.Is(p.Err, scrape.ErrUnauthorized) || p.StatusCode != http.StatusUnauthorized {
		t.Fatalf("old token: err %v status %d, want unauthorized", p.Err, p.StatusCode)
	}
	if len(p.Body) != 0 {
		t.Error("a failed scrape carries a body")
	}

	// Same length, new content and time, as the kubelet writes it.
	writeToken(t, tokenFile, "token-two", start.Add(time.Minute))
	if p := s.Scrape(context.Background(), targets)[0]; p.Err != nil {
		t.Fatalf("rotated token not picked up: %v", p.Err)
	}
}

func TestScrapeHangingKubeletTimesOutAlone(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	k := newKubelet(t, "", map[string][]byte{"/metrics/cadvisor": []byte("up 1\n")})

	s := newScraper(t, scrape.Options{Timeout: 300 * time.Millisecond})
	targets := []source.Target{
		{Node: "hung", URL: hang.URL + "/metrics/cadvisor", Kind: source.KubeletCadvisor},
		k.target(source.KubeletCadvisor, "/metrics/cadvisor", ""),
	}
	targets[1].Node = "healthy"
	got := s.Scrape(context.Background(), targets)

	if !errors.Is(got[0].Err, context.DeadlineExceeded) {
		t.Errorf("hung kubelet: err %v, want a deadline error", got[0].Err)
	}
	if got[1].Err != nil || string(got[1].Body) != "up 1\n" {
		t.Errorf("healthy kubelet: err %v body %q", got[1].Err, got[1].Body)
	}
}

func TestScrapeFailures(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4096)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("a"), 1<<20)) // 1 MiB that compresses to ~1 KiB
	_ = zw.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/403", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Forbidden (user=system:serviceaccount:canopy:canopy, verb=get, "+
			"resource=nodes, subresource(s)=[metrics])", http.StatusForbidden)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) })
	mux.HandleFunc("/exact", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(big[:1024])
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(gz.Bytes())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{MaxBodyBytes: 1024})
	cases := []struct {
		path    string
		kind    source.Kind
		want    error
		status  int
		message string
	}{
		{"/500", source.KubeletCadvisor, scrape.ErrHTTPStatus, 500, "500"},
		{"/403", source.KubeletCadvisor, scrape.ErrForbidden, 403, "nodes/metrics"},
		{"/403", source.KubeletSummary, scrape.ErrForbidden, 403, "nodes/stats"},
		{"/403", source.KubeletPods, scrape.ErrForbidden, 403, "nodes/proxy"},
		{"/big", source.KubeletCadvisor, scrape.ErrBodyTooLarge, 200, "1024 bytes"},
		{"/bomb", source.KubeletCadvisor, scrape.ErrBodyTooLarge, 200, "1024 bytes"},
		{"/exact", source.KubeletCadvisor, nil, 200, ""},
		{"/absent", source.KubeletCadvisor, scrape.ErrHTTPStatus, 404, "404"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/")+"-"+string(c.kind), func(t *testing.T) {
			target := source.Target{Node: "n", URL: srv.URL + c.path, Kind: c.kind}
			p := s.Scrape(context.Background(), []source.Target{target})[0]
			if c.want == nil {
				if p.Err != nil || len(p.Body) != 1024 {
					t.Fatalf("err %v, body %d bytes", p.Err, len(p.Body))
				}
				return
			}
			if !errors.Is(p.Err, c.want) {
				t.Fatalf("err %v, want %v", p.Err, c.want)
			}
			if p.StatusCode != c.status {
				t.Errorf("status %d, want %d", p.StatusCode, c.status)
			}
			if !strings.Contains(p.Err.Error(), c.message) {
				t.Errorf("error %q does not say %q", p.Err, c.message)
			}
			if len(p.Body) != 0 {
				t.Errorf("failed scrape carries %d bytes", len(p.Body))
			}
		})
	}
}

func TestScrapeGzip(t *testing.T) {
	fixture := testenv.Fixture(t, "kubelet-post1.16-kind-containerd.metrics-cadvisor.txt")
	var sawGzip atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			_, _ = w.Write(fixture)
			return
		}
		sawGzip.Store(true)
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = zw.Write(fixture)
		_ = zw.Close()
	}))
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{})
	target := source.Target{Node: "n", URL: srv.URL + "/metrics", Kind: source.Cadvisor}
	p := s.Scrape(context.Background(), []source.Target{target})[0]
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	if !sawGzip.Load() {
		t.Error("the scraper did not offer gzip")
	}
	if !bytes.Equal(p.Body, fixture) {
		t.Errorf("decompressed body of %d bytes differs from the fixture's %d", len(p.Body),
			len(fixture))
	}
}

func TestScrapePassesProtobufOn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.google.protobuf; "+
			"proto=io.prometheus.client.MetricFamily; encoding=delimited")
		_, _ = w.Write([]byte{0x0a, 0x03, 'u', 'p', 0x00})
	}))
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{})
	target := source.Target{Node: "n", URL: srv.URL, Kind: source.KubeletCadvisor}
	p := s.Scrape(context.Background(), []source.Target{target})[0]

	// The scraper does not read bodies: the type travels with the payload and
	// collector/parse refuses it (see the collector's tests).
	if p.Err != nil || !strings.HasPrefix(p.ContentType, "application/vnd.google.protobuf") {
		t.Fatalf("err %v content type %q", p.Err, p.ContentType)
	}
}

func TestScrapeBoundsConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte("up 1\n"))
	}))
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{Concurrency: 3})
	var targets []source.Target
	for i := range 12 {
		targets = append(targets, source.Target{
			Node: string(rune('a' + i)), URL: srv.URL, Kind: source.KubeletCadvisor,
		})
	}
	for _, p := range s.Scrape(context.Background(), targets) {
		if p.Err != nil {
			t.Fatal(p.Err)
		}
	}
	if p := peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want at most 3 (and some overlap)", p)
	}
}

func TestScrapeCancelledCycle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("up 1\n"))
	}))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newScraper(t, scrape.Options{Concurrency: 1})
	targets := []source.Target{
		{Node: "a", URL: srv.URL, Kind: source.KubeletCadvisor},
		{Node: "b", URL: srv.URL, Kind: source.KubeletCadvisor},
	}
	got := s.Scrape(ctx, targets)
	if len(got) != 2 {
		t.Fatalf("%d payloads, want one per target", len(got))
	}
	for _, p := range got {
		if !errors.Is(p.Err, context.Canceled) {
			t.Errorf("%s: err %v, want cancelled", p.Target.Node, p.Err)
		}
	}
}

func TestScrapeBadCredentialFiles(t *testing.T) {
	k := newKubelet(t, "", map[string][]byte{"/metrics/cadvisor": []byte("up 1\n")})
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.txt")
	for _, f := range []string{empty, notPEM} {
		_ = os.WriteFile(f, []byte("\n"), 0o600)
	}
	s := newScraper(t, scrape.Options{})

	cases := map[string]struct {
		target source.Target
		want   error
	}{
		"missing token": {k.target(source.KubeletCadvisor, "/metrics/cadvisor",
			filepath.Join(dir, "absent")), scrape.ErrToken},
		"empty token": {k.target(source.KubeletCadvisor, "/metrics/cadvisor", empty),
			scrape.ErrToken},
		"CA not PEM": {source.Target{Node: "n", URL: k.srv.URL, Kind: source.KubeletCadvisor,
			CAFile: notPEM}, scrape.ErrCA},
		"unknown CA": {source.Target{Node: "n", URL: k.srv.URL + "/metrics/cadvisor",
			Kind: source.KubeletCadvisor}, nil},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := s.Scrape(context.Background(), []source.Target{c.target})[0]
			if c.want == nil {
				// System roots do not trust the stand-in's certificate.
				if p.Err == nil {
					t.Fatal("a certificate signed by no known CA was accepted")
				}
				return
			}
			if !errors.Is(p.Err, c.want) {
				t.Errorf("err %v, want %v", p.Err, c.want)
			}
		})
	}

	// With the explicit flag the same target is scraped.
	insecure := source.Target{Node: "n", URL: k.srv.URL + "/metrics/cadvisor",
		Kind: source.KubeletCadvisor, InsecureSkipVerify: true}
	if p := s.Scrape(context.Background(), []source.Target{insecure})[0]; p.Err != nil {
		t.Errorf("insecureSkipVerify: %v", p.Err)
	}
}

func BenchmarkScrapeLargeFixture(b *testing.B) {
	fixture := testenv.Fixture(b, largeFixture)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(fixture)
	}))
	b.Cleanup(srv.Close)
	s, err := scrape.New(scrape.Options{})
	if err != nil {
		b.Fatal(err)
	}
	targets := []source.Target{{Node: "n", URL: srv.URL, Kind: source.KubeletCadvisor}}

	b.SetBytes(int64(len(fixture)))
	b.ReportAllocs()
	for b.Loop() {
		if p := s.Scrape(context.Background(), targets)[0]; p.Err != nil {
			b.Fatal(p.Err)
		}
	}
}

func TestStreamHandsEachBodyOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Each node's body names the node, so a mixed-up buffer shows.
		_, _ = w.Write(bytes.Repeat([]byte("node "+r.URL.Query().Get("n")+"\n"), 5000))
	}))
	t.Cleanup(srv.Close)

	s := newScraper(t, scrape.Options{Concurrency: 2})
	var targets []source.Target
	for i := range 10 {
		n := string(rune('a' + i))
		targets = append(targets, source.Target{Node: n, URL: srv.URL + "/?n=" + n,
			Kind: source.KubeletCadvisor})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var inFn, peak atomic.Int32
	s.Stream(context.Background(), targets, func(p source.Payload) {
		n := inFn.Add(1)
		defer inFn.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		want := bytes.Repeat([]byte("node "+p.Target.Node+"\n"), 5000)
		if p.Err != nil || !bytes.Equal(p.Body, want) {
			t.Errorf("%s: err %v, body of %d bytes not its own", p.Target.Node, p.Err,
				len(p.Body))
		}
		mu.Lock()
		seen[p.Target.Node]++
		mu.Unlock()
	})
	if len(seen) != 10 {
		t.Errorf("fn saw %d targets, want 10", len(seen))
	}
	for n, c := range seen {
		if c != 1 {
			t.Errorf("%s handed %d times", n, c)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d bodies held at once, want at most the concurrency 2", p)
	}
}
