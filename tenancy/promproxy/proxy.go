// Package promproxy owns the tenant query proxy: an http.Handler that serves
// the read endpoints of the Prometheus HTTP API (query, query_range, series,
// labels and label values) to one project, forwarding to the shared
// Prometheus only expressions and selectors that are limited to the
// project's namespace.
//
// The namespace comes from the request context alone, where the API's auth
// layer puts it with tenancy.NewContextWithNamespace. No query parameter,
// form field or header can change it, and no client header is forwarded.
// Authentication, membership and routing belong to package api; this package
// knows nothing of users, tokens or projects.
//
// # Mounting
//
// The handler routes on the trailing segments of the request path, so it
// serves /api/v1/query as well as
// /api/v1/projects/{projectId}/prometheus/api/v1/query: the API may mount it
// with or without stripping its prefix.
//
// # Answers
//
// The proxy speaks the Prometheus HTTP API, so what Prometheus itself could
// have answered comes in Prometheus's shape: a refused request (bad or foreign
// selector, parameter given twice or in both URL and body, unknown path) is
// {"status":"error","errorType":"bad_data","error":"..."} with a 4xx status,
// which Grafana and promtool show as they show Prometheus's own errors; and
// Prometheus's answers, success or error, are relayed unchanged. Failures of
// the proxy itself are RFC 9457 problems (application/problem+json), like the
// rest of Canopy's API: 502 when Prometheus is unreachable or answers
// something that is not its API, 504 when it does not answer in time, 500
// when the request carries no namespace.
//
// Parameters the endpoint does not know are dropped, as Prometheus ignores
// them; only the endpoint's own parameters are forwarded.
package promproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/tenancy"
)

// Defaults of Options.
const (
	DefaultTimeout      = 2 * time.Minute // Prometheus's own default query timeout
	DefaultMaxBodyBytes = 1 << 20
)

// ErrBadUpstream means the Prometheus URL given to New is not usable.
var ErrBadUpstream = errors.New("bad Prometheus URL")

// Outcomes counted by canopy_promproxy_requests_total.
const (
	OutcomeProxied  = "proxied"  // Prometheus's answer relayed, whatever its status
	OutcomeRefused  = "refused"  // refused by the proxy with a 4xx
	OutcomeUpstream = "upstream" // Prometheus unreachable, too slow or not speaking its API
	OutcomeInternal = "internal" // no namespace in the request context
	OutcomeCanceled = "canceled" // the client went away first
)

// Options configures a Proxy. The zero value is usable.
type Options struct {
	// Logger receives refusals (warn) and upstream failures (error).
	// Nil discards logs.
	Logger *slog.Logger
	// Client sends requests to Prometheus. Nil means a client of its own that
	// does not follow redirects.
	Client *http.Client
	// Timeout bounds each exchange with Prometheus. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds a POST form body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Registerer receives the proxy's metrics. Nil registers nothing.
	Registerer prometheus.Registerer
}

// Proxy is the tenant query proxy. It is safe for concurrent use.
type Proxy struct {
	upstream *url.URL
	log      *slog.Logger
	client   *http.Client
	timeout  time.Duration
	maxBody  int64
	requests *prometheus.CounterVec
}

var _ http.Handler = (*Proxy)(nil)

// New returns a Proxy that forwards to the Prometheus at upstream, which may
// carry a path prefix (http://prometheus:9090/prom). It returns ErrBadUpstream
// for a URL that is not absolute http(s) or that has a query or fragment.
func New(upstream *url.URL, opts Options) (*Proxy, error) {
	if err := checkUpstream(upstream); err != nil {
		return nil, err
	}

	p := &Proxy{
		upstream: upstream,
		log:      opts.Logger,
		client:   opts.Client,
		timeout:  opts.Timeout,
		maxBody:  opts.MaxBodyBytes,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_promproxy_requests_total",
			Help: "Requests to the tenant query proxy, by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.client == nil {
		p.client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxBody <= 0 {
		p.maxBody = DefaultMaxBodyBytes
	}

	// Show every endpoint at zero from the start, so rate() sees the first one.
	for _, ep := range allEndpoints {
		for _, o := range []string{OutcomeProxied, OutcomeRefused, OutcomeUpstream} {
			p.requests.WithLabelValues(ep.name, o)
		}
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(p.requests); err != nil {
			return nil, fmt.Errorf("register promproxy metrics: %w", err)
		}
	}
	return p, nil
}

func checkUpstream(u *url.URL) error {
	switch {
	case u == nil:
		return fmt.Errorf("%w: none given", ErrBadUpstream)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%w: scheme %q is not http or https", ErrBadUpstream, u.Scheme)
	case u.Host == "":
		return fmt.Errorf("%w: %q has no host", ErrBadUpstream, u.Redacted())
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: %q has a query or fragment", ErrBadUpstream, u.Redacted())
	}
	return nil
}

// ServeHTTP answers one Prometheus API request for the namespace in the
// request's context.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep, labelName, found := route(r.URL.EscapedPath())
	ns, hasNS := tenancy.NamespaceFromContext(r.Context())

	// A request without a namespace is a wiring mistake: never forward it.
	if !hasNS {
		p.count(ep, OutcomeInternal)
		p.log.ErrorContext(r.Context(), "tenant query without a namespace in its context",
			"path", r.URL.Path)
		writeProblem(w, http.StatusInternalServerError,
			"This request carries no project namespace, so it was not forwarded.")
		return
	}
	log := p.log.With("namespace", ns, "endpoint", ep.name)

	if !found {
		p.count(ep, OutcomeRefused)
		writePromError(w, &requestError{http.StatusNotFound, "not_found",
			errors.New("the tenant query proxy serves only /api/v1/query, " +
				"/api/v1/query_range, /api/v1/series, /api/v1/labels and " +
				"/api/v1/label/NAME/values")})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		p.count(ep, OutcomeRefused)
		w.Header().Set("Allow", "GET, POST")
		writePromError(w, &requestError{http.StatusMethodNotAllowed, "bad_data",
			fmt.Errorf("method %s is not allowed; use GET or POST", r.Method)})
		return
	}

	values, err := p.enforce(w, r, ep, ns)
	if err != nil {
		p.count(ep, OutcomeRefused)
		log.WarnContext(r.Context(), "tenant query refused", "error", err)
		writePromError(w, err)
		return
	}
	p.forward(w, r, log, ep, labelName, values)
}

// enforce reads the request's parameters and returns those to forward.
func (p *Proxy) enforce(w http.ResponseWriter, r *http.Request, ep endpoint, ns string,
) (url.Values, error) {
	in, err := readParams(w, r, p.maxBody)
	if err != nil {
		return nil, err
	}
	out, dropped, err := rewrite(ep, ns, in)
	if err != nil {
		return nil, err
	}
	if len(dropped) > 0 {
		p.log.DebugContext(r.Context(), "tenant query parameters dropped",
			"namespace", ns, "endpoint", ep.name, "params", dropped)
	}
	return out, nil
}

// forward sends values to Prometheus and relays its answer.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, log *slog.Logger,
	ep endpoint, labelName string, values url.Values) {
	ctx, cancel := context.WithTimeout(r.Context(), p.timeout)
	defer cancel()

	start := time.Now()
	resp, err := p.client.Do(p.upstreamRequest(ctx, ep, labelName, values))
	switch {
	case err != nil && r.Context().Err() != nil:
		p.count(ep, OutcomeCanceled)
		log.DebugContext(r.Context(), "client left before Prometheus answered", "error", err)
		return
	case errors.Is(err, context.DeadlineExceeded):
		p.count(ep, OutcomeUpstream)
		log.ErrorContext(r.Context(), "Prometheus did not answer in time",
			"duration", time.Since(start), "error", err)
		writeProblem(w, http.StatusGatewayTimeout, fmt.Sprintf(
			"Prometheus did not answer within %s.", p.timeout))
		return
	case err != nil:
		p.count(ep, OutcomeUpstream)
		log.ErrorContext(r.Context(), "Prometheus is unreachable", "error", err)
		writeProblem(w, http.StatusBadGateway, "Canopy could not reach Prometheus.")
		return
	}
	defer resp.Body.Close()
	p.relay(w, r, log, ep, resp)
}

// relay passes Prometheus's answer on, or a 502 if it is not one of its API.
func (p *Proxy) relay(w http.ResponseWriter, r *http.Request, log *slog.Logger, ep endpoint,
	resp *http.Response) {
	if !isPrometheusAnswer(resp) {
		p.count(ep, OutcomeUpstream)
		log.ErrorContext(r.Context(), "Prometheus answered something else than its API",
			"status", resp.StatusCode, "content_type", resp.Header.Get("Content-Type"))
		writeProblem(w, http.StatusBadGateway, fmt.Sprintf(
			"Prometheus answered %d %s instead of an API response.",
			resp.StatusCode, http.StatusText(resp.StatusCode)))
		return
	}

	p.count(ep, OutcomeProxied)
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		log.DebugContext(r.Context(), "relay Prometheus answer", "error", err)
	}
}

// upstreamRequest builds the request to Prometheus. It carries no header of
// the client's: their credentials and tenant headers are not Prometheus's.
func (p *Proxy) upstreamRequest(ctx context.Context, ep endpoint, labelName string,
	values url.Values) *http.Request {
	path := ep.pathFmt
	if strings.Contains(path, "%s") {
		path = fmt.Sprintf(path, url.PathEscape(labelName))
	}
	target := p.upstream.JoinPath(path)

	var req *http.Request
	if ep.useGET {
		target.RawQuery = values.Encode()
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	} else {
		body := strings.NewReader(values.Encode())
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, target.String(), body)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "canopy-promproxy")
	return req
}

// isPrometheusAnswer reports whether resp is an answer of the Prometheus API
// that the client should see: JSON, and not a refusal of Canopy's own
// credentials, which says nothing about the client's.
func isPrometheusAnswer(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusProxyAuthRequired:
		return false
	}
	ct, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && ct == "application/json"
}

func (p *Proxy) count(ep endpoint, outcome string) {
	name := ep.name
	if name == "" {
		name = "unknown"
	}
	p.requests.WithLabelValues(name, outcome).Inc()
}

// writePromError answers err in the Prometheus API's error shape.
func writePromError(w http.ResponseWriter, err error) {
	status, kind := http.StatusBadRequest, "bad_data"
	var reqErr *requestError
	if errors.As(err, &reqErr) {
		status, kind = reqErr.status, reqErr.kind
	}
	writeJSON(w, status, "application/json", map[string]string{
		"status":    "error",
		"errorType": kind,
		"error":     err.Error(),
	})
}

// writeProblem answers an RFC 9457 problem for a failure of the proxy itself.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, "application/problem+json", map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, body any) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
