// Package scrape fetches the raw answers of kubelet and cAdvisor endpoints:
// one goroutine per target per cycle, each with its own deadline inside the
// cycle's, bounded concurrency, size-limited bodies read into buffers that
// are reused from cycle to cycle, bearer tokens re-read when they rotate, and
// the API server's transport for targets reached through its node proxy. It
// also reads a standalone cAdvisor's machine facts from its REST API.
//
// It owns HTTP and nothing else: it does not read the bodies (collector/parse
// does), decide what counts (collector/aggregate) or find targets
// (collector/discovery). A failed scrape is a Payload with Err set, never a
// missing Payload.
package scrape

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"canopy.dev/canopy/collector/source"
)

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultConcurrency  = 64
	DefaultMaxBodyBytes = 64 << 20
)

// Errors a Payload's Err wraps. A timeout wraps context.DeadlineExceeded.
var (
	// ErrHTTPStatus means the endpoint answered with a status other than 200.
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrUnauthorized means the endpoint refused the credentials (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means the credentials lack a permission (403); the
	// message names the RBAC resource to grant.
	ErrForbidden = errors.New("forbidden")
	// ErrBodyTooLarge means the body exceeded Options.MaxBodyBytes.
	ErrBodyTooLarge = errors.New("body too large")
	// ErrToken means the bearer token file could not be read.
	ErrToken = errors.New("bearer token unavailable")
)

// Accept headers per kind. Metrics endpoints are asked for the text format
// first, then OpenMetrics; both are read by collector/parse. Protobuf is
// never asked for, and a protobuf answer is passed on for parse to refuse.
const (
	acceptMetrics = "text/plain;version=0.0.4;q=1,text/plain;q=0.9," +
		"application/openmetrics-text;version=1.0.0;q=0.8," +
		"application/openmetrics-text;version=0.0.1;q=0.7,*/*;q=0.1"
	acceptJSON = "application/json"
)

// Options configure a Scraper. Zero fields take their defaults.
type Options struct {
	Logger *slog.Logger
	// Timeout bounds one target's scrape, inside the cycle's deadline.
	Timeout time.Duration
	// Concurrency bounds the scrapes in flight.
	Concurrency int
	// MaxBodyBytes bounds a body after decompression.
	MaxBodyBytes int64
	// APIServer, when set, is used for every target whose URL lies under its
	// host: those are the node-proxy targets, and the API server's
	// credentials and CA apply instead of the target's own.
	APIServer *rest.Config
	UserAgent string
	Now       func() time.Time
}

// Scraper fetches targets. Its methods are safe for concurrent use, but one
// Scrape call at a time is expected: bodies live in per-target buffers that
// the next Scrape overwrites.
type Scraper struct {
	opts    Options
	log     *slog.Logger
	apiHost string       // scheme://host[:port] of the API server, or ""
	api     *http.Client // the API server's client, or nil

	pool sync.Pool // *[]byte bodies for Stream

	mu      sync.Mutex
	clients map[tlsKey]*tlsClient
	tokens  map[string]*tokenFile
	states  map[targetKey]*targetState
}

// targetKey identifies a target across cycles.
type targetKey struct {
	node string
	kind source.Kind
	url  string
}

// targetState is what a target keeps from cycle to cycle.
type targetState struct {
	buf  []byte
	up   bool
	seen bool
}

// New returns a Scraper. It fails only if the API server's client cannot be
// built from opts.APIServer.
func New(opts Options) (*Scraper, error) {
	opts.Timeout = cmp.Or(opts.Timeout, DefaultTimeout)
	opts.Concurrency = cmp.Or(opts.Concurrency, DefaultConcurrency)
	opts.MaxBodyBytes = cmp.Or(opts.MaxBodyBytes, DefaultMaxBodyBytes)
	opts.UserAgent = cmp.Or(opts.UserAgent, "canopy-collector")
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	s := &Scraper{
		opts:    opts,
		log:     opts.Logger,
		clients: make(map[tlsKey]*tlsClient),
		tokens:  make(map[string]*tokenFile),
		states:  make(map[targetKey]*targetState),
	}
	s.pool.New = func() any { return new([]byte) }
	if opts.APIServer != nil {
		if err := s.initAPIServer(opts.APIServer); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// initAPIServer builds the client used for node-proxy targets.
func (s *Scraper) initAPIServer(cfg *rest.Config) error {
	base, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return fmt.Errorf("read API server url: %w", err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("build API server client: %w", err)
	}
	s.apiHost = base.Scheme + "://" + base.Host
	s.api = client
	return nil
}

// Scrape fetches every target, at most Options.Concurrency at once, and
// returns one Payload per target in the order given. Bodies stay valid until
// the next Scrape call. Targets missing from this call are forgotten.
func (s *Scraper) Scrape(ctx context.Context, targets []source.Target) []source.Payload {
	states := s.statesFor(targets)
	payloads := make([]source.Payload, len(targets))

	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			// The cycle is over: the rest fail without being tried.
			payloads[i] = s.failed(targets[i], ctx.Err(), 0)
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			payloads[i] = s.scrapeOne(ctx, targets[i], &states[i].buf)
		})
	}
	wg.Wait()

	for i := range payloads {
		s.noteState(payloads[i], states[i])
	}
	return payloads
}

// statesFor returns each target's state, creating new ones and dropping the
// states of targets no longer scraped.
func (s *Scraper) statesFor(targets []source.Target) []*targetState {
	s.mu.Lock()
	defer s.mu.Unlock()

	keep := make(map[targetKey]*targetState, len(targets))
	out := make([]*targetState, len(targets))
	for i, t := range targets {
		k := targetKey{node: t.Node, kind: t.Kind, url: t.URL}
		st := s.states[k]
		if st == nil {
			st = &targetState{}
		}
		keep[k] = st
		out[i] = st
	}
	s.states = keep
	return out
}

// Stream fetches every target like Scrape, but hands each Payload to fn as
// soon as it is read, on the goroutine that fetched it: fn runs for up to
// Options.Concurrency targets at once and must be safe for that. A body is
// valid only until fn returns; its buffer then goes back to a pool, so at
// most Concurrency bodies are in memory whatever the number of targets.
func (s *Scraper) Stream(ctx context.Context, targets []source.Target,
	fn func(source.Payload)) {
	states := s.statesFor(targets)
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			p := s.failed(targets[i], ctx.Err(), 0)
			fn(p)
			s.noteState(p, states[i])
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			buf := s.pool.Get().(*[]byte)
			defer s.pool.Put(buf)
			p := s.scrapeOne(ctx, targets[i], buf)
			fn(p)
			s.noteState(p, states[i])
		})
	}
	wg.Wait()
}

// scrapeOne fetches one target under its own deadline into *buf.
func (s *Scraper) scrapeOne(ctx context.Context, t source.Target, buf *[]byte) source.Payload {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := s.opts.Now()

	req, err := s.request(ctx, t)
	if err != nil {
		return s.failedAt(t, err, 0, start)
	}
	client, err := s.clientFor(t)
	if err != nil {
		return s.failedAt(t, err, 0, start)
	}

	resp, err := client.Do(req)
	if err != nil {
		return s.failedAt(t, withContext(ctx, fmt.Errorf("get %s: %w", t.URL, err)), 0, start)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the conn be reused
		return s.failedAt(t, s.statusError(t, resp), resp.StatusCode, start)
	}

	if n := resp.ContentLength; n > 0 && n <= s.opts.MaxBodyBytes {
		*buf = slices.Grow((*buf)[:0], int(n)+1) // +1: room to see EOF
	}
	*buf, err = readBody((*buf)[:0], resp.Body, s.opts.MaxBodyBytes)
	if err != nil {
		return s.failedAt(t, withContext(ctx, fmt.Errorf("read body of %s: %w", t.URL, err)),
			resp.StatusCode, start)
	}
	return source.Payload{
		Target:      t,
		Body:        *buf,
		ContentType: resp.Header.Get("Content-Type"),
		ScrapedAt:   start,
		Duration:    s.opts.Now().Sub(start),
		StatusCode:  resp.StatusCode,
	}
}

// request builds the GET for t, with its Accept header and bearer token.
func (s *Scraper) request(ctx context.Context, t source.Target) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request for %s: %w", t.URL, err)
	}
	req.Header.Set("User-Agent", s.opts.UserAgent)
	req.Header.Set("Accept", acceptFor(t.Kind))
	if t.BearerTokenFile != "" && !s.viaAPIServer(t) {
		token, err := s.token(t.BearerTokenFile)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, nil
}

// acceptFor is the Accept header for an endpoint kind.
func acceptFor(k source.Kind) string {
	if k == source.KubeletSummary || k == source.KubeletPods {
		return acceptJSON
	}
	return acceptMetrics
}

// viaAPIServer reports whether t is reached through the API server.
func (s *Scraper) viaAPIServer(t source.Target) bool {
	return s.api != nil && strings.HasPrefix(t.URL, s.apiHost+"/")
}

// statusError explains a non-200 answer; 401 and 403 say what to fix.
func (s *Scraper) statusError(t source.Target, resp *http.Response) error {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("get %s: %s: %w: the bearer token was refused "+
			"(expired, wrong audience, or the kubelet does not use webhook authentication)",
			t.URL, resp.Status, ErrUnauthorized)
	case http.StatusForbidden:
		return fmt.Errorf("get %s: %s: %w: grant get on %s to Canopy's service account",
			t.URL, resp.Status, ErrForbidden, s.rbacResource(t))
	}
	return fmt.Errorf("get %s: %s: %w", t.URL, resp.Status, ErrHTTPStatus)
}

// rbacResource names the permission a kubelet endpoint needs. Through the
// API server every endpoint needs nodes/proxy; directly the kubelet maps
// /metrics to nodes/metrics, /stats to nodes/stats and the rest to
// nodes/proxy.
func (s *Scraper) rbacResource(t source.Target) string {
	if s.viaAPIServer(t) {
		return "nodes/proxy"
	}
	switch t.Kind {
	case source.KubeletCadvisor, source.KubeletResource:
		return "nodes/metrics"
	case source.KubeletSummary:
		return "nodes/stats"
	case source.Cadvisor:
		return "the cAdvisor endpoint (its own authentication, not Kubernetes RBAC)"
	}
	return "nodes/proxy"
}

// readBody reads r into dst, which it grows as needed, failing with
// ErrBodyTooLarge past limit bytes.
func readBody(dst []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)] // grow the way append does
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst[:0], fmt.Errorf("read more than %d bytes: %w", limit, ErrBodyTooLarge)
		}
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst[:0], err
		}
	}
}

// withContext makes a failure caused by the deadline or cancellation wrap
// the context's error, so callers can tell timeouts apart.
func withContext(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// failed is a Payload for a target that was not tried.
func (s *Scraper) failed(t source.Target, err error, status int) source.Payload {
	return s.failedAt(t, err, status, s.opts.Now())
}

// failedAt is a failed Payload for a scrape that started at start.
func (s *Scraper) failedAt(t source.Target, err error, status int, start time.Time) source.Payload {
	return source.Payload{
		Target: t, ScrapedAt: start, Duration: s.opts.Now().Sub(start),
		StatusCode: status, Err: err,
	}
}

// noteState logs a target's failure or recovery when its state changes. The
// aggregator, which also sees parse failures, logs target health at warn;
// this is the transport's view, at debug, and for endpoints the aggregator
// never sees.
func (s *Scraper) noteState(p source.Payload, st *targetState) {
	up := p.Err == nil
	if st.seen && st.up == up {
		return
	}
	first := !st.seen
	st.seen, st.up = true, up
	switch {
	case !up:
		s.log.Debug("scrape failing", "node", p.Target.Node, "endpoint", string(p.Target.Kind),
			"duration", p.Duration, "error", p.Err)
	case !first:
		s.log.Debug("scrape recovered", "node", p.Target.Node,
			"endpoint", string(p.Target.Kind))
	}
}
