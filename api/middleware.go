package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
)

// httpMetrics are the API's own series.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	labels := []string{"route", "method", "code"}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_http_requests_total",
			Help: "HTTP requests served by the API, by route pattern, method and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "canopy_http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by route pattern, method and status code.",
			Buckets: []float64{
				.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
			},
		}, labels),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register HTTP metrics: %w", err)
		}
	}
	return m, nil
}

// metricsHandler serves /metrics from the configured gatherer.
func (s *server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{})
}

// observe writes one access-log line per request and counts it in the
// HTTP metrics, labelled by chi's route pattern (never the raw path).
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)

		route := "unmatched"
		if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePattern() != "" {
			route = rctx.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		code := strconv.Itoa(status)
		s.metrics.requests.WithLabelValues(route, r.Method, code).Inc()
		s.metrics.duration.WithLabelValues(route, r.Method, code).Observe(elapsed.Seconds())
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("request_id", middleware.GetReqID(r.Context())),
			slog.String("method", r.Method), slog.String("route", route),
			slog.String("path", r.URL.Path), slog.Int("status", status),
			slog.Duration("duration", elapsed), slog.Int("bytes", ww.BytesWritten()))
	})
}

// recoverer turns a handler panic into a logged 500 problem.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.problem(w, r, fmt.Errorf("handler panicked: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// credentialParams are query parameters that would put a secret in URLs,
// which end up in logs and browser history.
var credentialParams = []string{
	"refreshToken", "refresh_token", "accessToken", "access_token", "token", "password",
}

// refuseQueryCredentials answers 400 to any request carrying a credential in
// its query string. Tokens travel in the Authorization header or the body.
func (s *server) refuseQueryCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, name := range credentialParams {
			if q.Has(name) {
				s.problem(w, r, &apiError{
					kind: errBadRequest,
					detail: "Credentials are refused in the query string; " +
						"send them in the body or the Authorization header.",
					fields: []tenancy.FieldError{field(name, "must not be in the query string")},
				})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// principal is who a request speaks for: a signed-in user, or a project
// token (UserID empty, TokenProject set).
type principal struct {
	UserID       string
	Email        string
	Name         string
	Admin        bool
	TokenProject string
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p *principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// principalFrom returns the authenticated caller; the auth middleware
// guarantees one on every route that calls it.
func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", fail(tenancy.ErrUnauthorized, "Send an access token as Authorization: Bearer.")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fail(tenancy.ErrUnauthorized,
			"The Authorization header must be Bearer and a token.")
	}
	return strings.TrimSpace(token), nil
}

// userFromToken verifies an access token.
func (s *server) userFromToken(token string) (*principal, error) {
	if strings.HasPrefix(token, auth.ProjectTokenPrefix) {
		return nil, fail(tenancy.ErrUnauthorized,
			"Project tokens authenticate only the project's Prometheus routes.")
	}
	c, err := s.tokens.Verify(token)
	if err != nil {
		return nil, failCause(tenancy.ErrUnauthorized,
			"The access token is malformed, expired or not signed by Canopy.", err)
	}
	return &principal{
		UserID: c.Subject, Email: c.Email, Name: c.Name, Admin: s.admins[strings.ToLower(c.Email)],
	}, nil
}

// authenticateUser requires a valid access token.
func (s *server) authenticateUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearer(r)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		p, err := s.userFromToken(token)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(withPrincipal(r.Context(), p)))
	})
}

// authenticateProjectReader admits a member's (or an admin's) access token,
// or a project token of the project in the path, and puts the project's
// namespace in the context for the query proxy. The namespace comes from
// the stored project alone.
func (s *server) authenticateProjectReader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearer(r)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		projectID := chi.URLParam(r, "projectId")
		var p *principal
		if strings.HasPrefix(token, auth.ProjectTokenPrefix) {
			p, err = s.projectTokenPrincipal(r.Context(), token, projectID)
		} else {
			p, err = s.userFromToken(token)
		}
		if err != nil {
			s.problem(w, r, err)
			return
		}
		ctx := withPrincipal(r.Context(), p)
		project, _, err := s.projectAccess(ctx, projectID, tenancy.RoleViewer)
		if err != nil {
			s.problem(w, r, err)
			return
		}
		ctx = tenancy.NewContextWithNamespace(ctx, project.Namespace)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// projectTokenPrincipal checks a project token and that it belongs to
// projectID; a token of another project sees nothing (404).
func (s *server) projectTokenPrincipal(
	ctx context.Context, token, projectID string,
) (*principal, error) {
	t, err := s.store.ProjectTokenByHash(ctx, auth.HashToken(token))
	if err != nil {
		if isNotFound(err) {
			return nil, fail(tenancy.ErrUnauthorized, "The project token is unknown or revoked.")
		}
		return nil, fmt.Errorf("find project token: %w", err)
	}
	if t.ProjectID != projectID {
		return nil, fail(tenancy.ErrNotFound, "There is no such project.")
	}
	return &principal{TokenProject: t.ProjectID}, nil
}
