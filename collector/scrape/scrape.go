// Package scrape fetches the raw answers of kubelet and cAdvisor endpoints:
// one goroutine per target per cycle, each with its own deadline inside the
// cycle's, bounded concurrency, size-limited bodies either read into buffers
// that are reused from cycle to cycle or handed over as readers to be read a
// window at a time (StreamBodies), bearer tokens re-read when they rotate, and
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
	"runtime"
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
	// MaxBodies bounds the bodies Stream holds at once (being read or handed
	// to its callback), whatever Concurrency is; StreamBodies holds only its
	// JSON bodies so. Their buffers are kept and
	// reused from cycle to cycle. Default twice GOMAXPROCS, at least 4.
	MaxBodies int
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

	bodies chan *[]byte // Stream's free body buffers, MaxBodies of them

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
	opts.MaxBodies = cmp.Or(opts.MaxBodies, max(4, 2*runtime.GOMAXPROCS(0)))
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
	s.bodies = make(chan *[]byte, opts.MaxBodies)
	for range opts.MaxBodies {
		s.bodies <- new([]byte)
	}
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
			buf := &states[i].buf
			payloads[i] = s.scrapeOne(ctx, targets[i], func(context.Context) (*[]byte, error) {
				return buf, nil
			})
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
// Options.MaxBodies targets at once and must be safe for that. A body is
// valid only until fn returns; its buffer is then reused, so at most
// MaxBodies bodies are in memory whatever the number of targets. A scrape
// whose answer arrives while every buffer is held waits for one within its
// own deadline.
//
// TODO(scrape): a kubelet that sends its headers and then trickles its body
// holds a buffer until its timeout; MaxBodies of those at once delay the
// rest. Parsing the body as it arrives would need no buffer at all.
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
			var held *[]byte
			p := s.scrapeOne(ctx, targets[i], s.bodyBuffer(&held))
			fn(p)
			if held != nil {
				s.bodies <- held
			}
			s.noteState(p, states[i])
		})
	}
	wg.Wait()
}

// StreamBodies fetches every target like Stream, but hands fn the body of a
// good metrics answer (every kind but kubelet-summary and kubelet-pods) as
// a reader, with Payload.Body nil, so that fn can read it a window at a
// time: a body is then never whole in memory. The reader is valid only until
// fn returns. It fails past MaxBodyBytes with ErrBodyTooLarge and at the
// target's deadline with an error wrapping context.DeadlineExceeded. fn
// returns the error that ended its reading, or nil. JSON answers, failures
// and untried targets come with a nil reader, as Stream hands them.
func (s *Scraper) StreamBodies(ctx context.Context, targets []source.Target,
	fn func(p source.Payload, body io.Reader) error) {
	states := s.statesFor(targets)
	sem := make(chan struct{}, s.opts.Concurrency)
	var wg sync.WaitGroup
	for i := range targets {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			p := s.failed(targets[i], ctx.Err(), 0)
			_ = fn(p, nil)
			s.noteState(p, states[i])
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			s.streamOne(ctx, targets[i], states[i], fn)
		})
	}
	wg.Wait()
}

// streamOne fetches one target for StreamBodies.
func (s *Scraper) streamOne(ctx context.Context, t source.Target, st *targetState,
	fn func(source.Payload, io.Reader) error) {
	if t.Kind == source.KubeletSummary || t.Kind == source.KubeletPods {
		var held *[]byte
		p := s.scrapeOne(ctx, t, s.bodyBuffer(&held))
		_ = fn(p, nil)
		if held != nil {
			s.bodies <- held
		}
		s.noteState(p, st)
		return
	}

	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := s.opts.Now()
	p, resp := s.get(ctx, t, start)
	if resp == nil {
		_ = fn(p, nil)
		s.noteState(p, st)
		return
	}
	defer resp.Body.Close()
	body := &bodyReader{ctx: ctx, url: t.URL, r: resp.Body, left: s.opts.MaxBodyBytes}
	if err := fn(p, body); err != nil {
		p.Err = err
	}
	s.noteState(p, st)
}

// bodyBuffer returns the buffer function of scrapeOne for Stream: it waits
// for a free body buffer within the target's deadline and records it in
// *held, to be given back once the body has been used.
func (s *Scraper) bodyBuffer(held **[]byte) func(context.Context) (*[]byte, error) {
	return func(ctx context.Context) (*[]byte, error) {
		select {
		case *held = <-s.bodies:
			return *held, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for a body buffer: %w", ctx.Err())
		}
	}
}

// bodyReader is a body handed out by StreamBodies: bounded, and its errors
// say which target failed and whether the deadline was the cause.
type bodyReader struct {
	ctx  context.Context
	url  string
	r    io.Reader
	left int64 // bytes still allowed
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more shows a body past the limit
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	switch {
	case b.left < 0:
		return n, fmt.Errorf("read body of %s: %w", b.url, ErrBodyTooLarge)
	case err != nil && !errors.Is(err, io.EOF):
		return n, withContext(b.ctx, fmt.Errorf("read body of %s: %w", b.url, err))
	}
	return n, err
}

// scrapeOne fetches one target under its own deadline. Once the answer is
// known to be good, it reads the body into the buffer buffer returns.
func (s *Scraper) scrapeOne(ctx context.Context, t source.Target,
	buffer func(context.Context) (*[]byte, error)) source.Payload {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	start := s.opts.Now()
	p, resp := s.get(ctx, t, start)
	if resp == nil {
		return p
	}
	defer resp.Body.Close()

	buf, err := buffer(ctx)
	if err != nil {
		return s.failedAt(t, fmt.Errorf("read body of %s: %w", t.URL, err), resp.StatusCode,
			start)
	}
	if n := resp.ContentLength; n > 0 && n <= s.opts.MaxBodyBytes {
		*buf = slices.Grow((*buf)[:0], int(n)+1) // +1: room to see EOF
	}
	*buf, err = readBody((*buf)[:0], resp.Body, s.opts.MaxBodyBytes)
	if err != nil {
		return s.failedAt(t, withContext(ctx, fmt.Errorf("read body of %s: %w", t.URL, err)),
			resp.StatusCode, start)
	}
	p.Body, p.Duration = *buf, s.opts.Now().Sub(start)
	return p
}

// get sends the GET for t. For a 200 answer it returns the Payload without
// its body and the response, whose body the caller reads and closes; for
// anything else, the failed Payload and a nil response.
func (s *Scraper) get(ctx context.Context, t source.Target,
	start time.Time) (source.Payload, *http.Response) {
	req, err := s.request(ctx, t)
	if err != nil {
		return s.failedAt(t, err, 0, start), nil
	}
	client, err := s.clientFor(t)
	if err != nil {
		return s.failedAt(t, err, 0, start), nil
	}
	resp, err := client.Do(req)
	if err != nil {
		return s.failedAt(t, withContext(ctx, fmt.Errorf("get %s: %w", t.URL, err)), 0,
			start), nil
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // let the conn be reused
		return s.failedAt(t, s.statusError(t, resp), resp.StatusCode, start), nil
	}
	return source.Payload{
		Target:      t,
		ContentType: resp.Header.Get("Content-Type"),
		ScrapedAt:   start,
		Duration:    s.opts.Now().Sub(start),
		StatusCode:  resp.StatusCode,
	}, resp
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
