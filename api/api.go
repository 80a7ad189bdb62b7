// Package api owns Canopy's HTTP interface: the chi router, the handlers of
// every /api/v1 route, authentication middleware, request validation
// against the embedded OpenAPI document (openapi.yaml), RFC 9457 problem
// answers, access logs and HTTP metrics.
//
// It speaks to storage only through tenancy.Store and to the query proxy
// only through an http.Handler; it never touches Kubernetes or Grafana.
//
//	h, err := api.New(api.Config{Store: st, Keys: keys, Logger: log})
//	if err != nil { ... }
//	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: h}
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/api/docs"
	"canopy.dev/canopy/tenancy"
)

// Defaults of Config.
const (
	DefaultNamespacePrefix = "canopy-"
	DefaultRefreshTTL      = 30 * 24 * time.Hour
	// MaxBodyBytes bounds every request body; larger ones answer 413.
	MaxBodyBytes = 1 << 20
)

// ErrConfig means Config lacks something New needs.
var ErrConfig = errors.New("bad API configuration")

// Dashboard is a link to one Grafana dashboard of a project.
type Dashboard struct {
	Title string `json:"title"`
	URL   string `json:"url"`
}

// LoginLimits bound sign-in attempts. Zero fields take DESIGN's defaults:
// 10 attempts a minute per client address, 5 failures per 15 minutes per
// account.
type LoginLimits struct {
	PerAddress      int
	AddressPeriod   time.Duration
	FailuresPerUser int
	FailuresPeriod  time.Duration
}

// Config is what the API needs. Store and Keys are required.
type Config struct {
	Store  tenancy.Store
	Keys   *auth.KeySet // from auth.LoadOrCreateSigningKey
	Logger *slog.Logger // nil discards
	Now    func() time.Time

	// AdminEmails are the platform admins (compared lower-cased).
	AdminEmails []string
	// NamespacePrefix goes before every project name; "" means "canopy-".
	NamespacePrefix string
	// ReservedNamespaces can never be a project's namespace: Canopy's own,
	// the monitoring and ingress namespaces. The cluster's system namespaces
	// are always reserved.
	ReservedNamespaces []string
	// ExternalURL is where users reach Canopy; it is the access tokens'
	// issuer and the base of problem type URIs. "" means relative URIs and
	// issuer "canopy".
	ExternalURL string
	// ClusterConfigured is false when Canopy manages no cluster: projects
	// then stay provisioning and are deleted at once.
	ClusterConfigured bool

	// Notifier hears about every change a user makes; nil is fine.
	Notifier tenancy.Notifier
	// Usage serves the collector's figures; nil answers "no data".
	Usage tenancy.UsageReader
	// PromProxy serves the tenant Prometheus routes with the project's
	// namespace in the request context; nil answers 503.
	PromProxy http.Handler
	// Dashboards lists a project's Grafana dashboards; nil lists none.
	Dashboards func(p *tenancy.Project) []Dashboard

	LoginLimits    LoginLimits
	PasswordParams auth.PasswordParams // zero means auth.DefaultPasswordParams
	RefreshTTL     time.Duration       // zero means DefaultRefreshTTL

	// Registerer receives the HTTP metrics and Gatherer serves /metrics.
	// Both nil means a registry of the API's own.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
}

// server holds what the handlers share.
type server struct {
	cfg      Config
	store    tenancy.Store
	log      *slog.Logger
	now      func() time.Time
	tokens   *auth.Tokens
	admins   map[string]bool
	spec     *spec
	metrics  *httpMetrics
	dummy    string // password hash checked when the account is unknown
	byAddr   *auth.KeyedLimiter
	byUser   *auth.KeyedLimiter
	problems string    // base of problem type URIs
	lists    listCache // encoded project lists, on stores with a data version
}

// New builds the API's http.Handler.
func New(cfg Config) (http.Handler, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	return s.routes(), nil
}

// newServer fills defaults and prepares the shared parts.
func newServer(cfg Config) (*server, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, fmt.Errorf("new API: Store and Keys are required: %w", ErrConfig)
	}
	applyDefaults(&cfg)
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	m, err := newHTTPMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	dummy, err := auth.DecoyHash(cfg.PasswordParams)
	if err != nil {
		return nil, fmt.Errorf("make decoy password hash: %w", err)
	}
	issuer := strings.TrimRight(cfg.ExternalURL, "/")
	if issuer == "" {
		issuer = "canopy"
	}
	s := &server{
		cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, spec: sp, metrics: m,
		tokens: auth.NewTokens(cfg.Keys, issuer, cfg.Now),
		admins: map[string]bool{},
		dummy:  dummy,
		byAddr: auth.NewKeyedLimiter(cfg.LoginLimits.PerAddress, cfg.LoginLimits.AddressPeriod),
		byUser: auth.NewKeyedLimiter(
			cfg.LoginLimits.FailuresPerUser, cfg.LoginLimits.FailuresPeriod),
		problems: strings.TrimRight(cfg.ExternalURL, "/") + "/docs#problem-",
	}
	for _, e := range cfg.AdminEmails {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			s.admins[e] = true
		}
	}
	return s, nil
}

func applyDefaults(cfg *Config) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = DefaultNamespacePrefix
	}
	cfg.ReservedNamespaces = append(cfg.ReservedNamespaces,
		"default", "kube-system", "kube-public", "kube-node-lease")
	if cfg.PasswordParams == (auth.PasswordParams{}) {
		cfg.PasswordParams = auth.DefaultPasswordParams
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	l := &cfg.LoginLimits
	l.PerAddress = orDefault(l.PerAddress, 10)
	l.AddressPeriod = orDefault(l.AddressPeriod, time.Minute)
	l.FailuresPerUser = orDefault(l.FailuresPerUser, 5)
	l.FailuresPeriod = orDefault(l.FailuresPeriod, 15*time.Minute)
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// routes lists every route on one line each. Operations with a request body
// or parameters run behind the OpenAPI validator, after authentication.
func (s *server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.observe, s.recoverer, limitBody, s.refuseQueryCredentials)
	r.NotFound(s.notFound)
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		s.methodNotAllowed(w, req, r)
	})

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metricsHandler())
	r.Get("/openapi.yaml", s.openapiYAML)
	r.Get("/openapi.json", s.openapiJSON)
	r.Get("/.well-known/jwks.json", s.jwks)
	r.Method(http.MethodGet, "/docs", docs.Handler(problemTypes()))

	// Public: the credentials are in the body.
	r.Group(func(r chi.Router) {
		r.Use(s.validate)
		r.Post("/api/v1/auth/register", s.register)
		r.Post("/api/v1/auth/login", s.login)
		r.Post("/api/v1/auth/refresh", s.refresh)
		r.Post("/api/v1/auth/logout", s.logout)
	})

	// A user's access token.
	r.Group(func(r chi.Router) {
		r.Use(s.authenticateUser, s.validate)
		r.Get("/api/v1/users/me", s.me)
		r.Get("/api/v1/projects", s.listProjects)
		r.Post("/api/v1/projects", s.createProject)
		r.Get("/api/v1/projects/{projectId}", s.getProject)
		r.Delete("/api/v1/projects/{projectId}", s.deleteProject)
		r.Get("/api/v1/projects/{projectId}/apps", s.listApps)
		r.Post("/api/v1/projects/{projectId}/apps", s.createApp)
		r.Get("/api/v1/projects/{projectId}/apps/{appId}", s.getApp)
		r.Patch("/api/v1/projects/{projectId}/apps/{appId}", s.updateApp)
		r.Delete("/api/v1/projects/{projectId}/apps/{appId}", s.deleteApp)
		r.Get("/api/v1/projects/{projectId}/members", s.listMembers)
		r.Post("/api/v1/projects/{projectId}/members", s.addMember)
		r.Get("/api/v1/projects/{projectId}/members/{userId}", s.getMember)
		r.Delete("/api/v1/projects/{projectId}/members/{userId}", s.removeMember)
		r.Get("/api/v1/projects/{projectId}/tokens", s.listProjectTokens)
		r.Post("/api/v1/projects/{projectId}/tokens", s.createProjectToken)
		r.Get("/api/v1/projects/{projectId}/tokens/{tokenId}", s.getProjectToken)
		r.Delete("/api/v1/projects/{projectId}/tokens/{tokenId}", s.deleteProjectToken)
		r.Get("/api/v1/projects/{projectId}/usage", s.projectUsage)
		r.Get("/api/v1/cluster/usage", s.clusterUsage)
	})

	// A user's access token or a project token of that project, read-only.
	r.Group(func(r chi.Router) {
		r.Use(s.authenticateProjectReader, s.validate)
		const prom = "/api/v1/projects/{projectId}/prometheus/api/v1"
		r.Get(prom+"/query", s.prometheus)
		r.Post(prom+"/query", s.prometheus)
		r.Get(prom+"/query_range", s.prometheus)
		r.Post(prom+"/query_range", s.prometheus)
		r.Get(prom+"/series", s.prometheus)
		r.Post(prom+"/series", s.prometheus)
		r.Get(prom+"/labels", s.prometheus)
		r.Post(prom+"/labels", s.prometheus)
		r.Get(prom+"/label/{labelName}/values", s.prometheus)
	})
	return r
}
