// Package grafanasync makes Grafana match Canopy's store: one organization
// per project holding a Prometheus data source on the project's tenant query
// proxy, the project dashboards and the project's members as viewers, and
// the admin dashboards in the main organization. It talks to Grafana as a
// server admin through grafana-openapi-client-go.
//
// The sync is level-triggered and idempotent: each pass reads Grafana, compares
// it with what the store asks for, ignoring fields Grafana owns, and writes
// only the differences, so a pass that finds nothing changed writes nothing
// and anything removed by hand comes back. It reports per project in the
// GrafanaReady condition and records the organization it created in the
// GrafanaOrganization condition; it never adopts an organization it did not
// create.
//
// It reads and writes the store only through tenancy.Store and must not touch
// Kubernetes.
package grafanasync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	goapi "github.com/grafana/grafana-openapi-client-go/client"

	"canopy.dev/canopy/dashboards"
	"canopy.dev/canopy/tenancy"
)

var _ tenancy.Notifier = (*Syncer)(nil)

// Defaults of Config.
const (
	DefaultResyncInterval = time.Minute
	DefaultRequestTimeout = 10 * time.Second
	defaultMinBackoff     = time.Second
)

// Condition types the sync owns on a project.
const (
	// ConditionReady says whether the project's Grafana organization matches
	// the store.
	ConditionReady = "GrafanaReady"
	// ConditionOrganization records the id of the organization the sync
	// created for the project: only that organization is ever changed or
	// deleted on the project's behalf.
	ConditionOrganization = "GrafanaOrganization"
)

// Reasons of the GrafanaReady condition.
const (
	ReasonSynced              = "Synced"
	ReasonUnavailable         = "GrafanaUnavailable"
	ReasonUnauthorized        = "GrafanaUnauthorized"
	ReasonOrganizationTaken   = "OrganizationNameTaken"
	ReasonDashboardTitleTaken = "DashboardTitleTaken"
	ReasonSyncFailed          = "SyncFailed"
	ReasonOrganizationDeleted = "OrganizationDeleted"
)

// Errors of the sync.
var (
	// ErrConfig means the configuration cannot work.
	ErrConfig = errors.New("invalid grafana sync configuration")
	// ErrOrganizationTaken means an organization Canopy did not create holds
	// the project's name.
	ErrOrganizationTaken = errors.New(
		"grafana organization name taken by an organization canopy did not create")
	// ErrDashboardTitleTaken means a dashboard made by hand holds the title
	// of a Canopy dashboard in the same folder.
	ErrDashboardTitleTaken = errors.New("grafana dashboard title taken")
)

// Config says where Grafana is and what to sync into it.
type Config struct {
	// URL is Grafana's base URL (CANOPY_GRAFANA_URL).
	URL string
	// User and Password are a Grafana server admin's (CANOPY_GRAFANA_USER,
	// CANOPY_GRAFANA_PASSWORD): organizations are created and addressed with
	// X-Grafana-Org-Id, which an org-scoped token cannot do.
	User     string
	Password string
	// ExternalURL is where Grafana reaches Canopy (CANOPY_EXTERNAL_URL); data
	// sources point at <ExternalURL>/api/v1/projects/<id>/prometheus.
	ExternalURL string
	// Store holds projects, members and project tokens.
	Store tenancy.Store
	// Logger defaults to discarding.
	Logger *slog.Logger
	// ResyncInterval is the time between full passes (CANOPY_RESYNC_INTERVAL).
	ResyncInterval time.Duration
	// RequestTimeout bounds each Grafana call.
	RequestTimeout time.Duration
	// MinBackoff is the first wait before retrying a failed pass; it doubles
	// up to ResyncInterval.
	MinBackoff time.Duration
}

// Syncer makes Grafana match the store. Run drives it; SyncOnce is one pass.
type Syncer struct {
	api         *goapi.GrafanaHTTPAPI
	adminUser   string
	externalURL string
	store       tenancy.Store
	log         *slog.Logger
	resync      time.Duration
	minBackoff  time.Duration

	// mu guards pending; changed wakes Run when pending grows.
	mu      sync.Mutex
	pending map[string]bool
	changed chan struct{}

	// passMu serializes passes; orgs maps organization ids the sync knows it
	// created to their project, so that it can delete them once the project
	// is gone from the store.
	passMu sync.Mutex
	orgs   map[int64]string
}

// New checks cfg and builds a Syncer. It makes no call to Grafana.
func New(cfg Config) (*Syncer, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("parse grafana url=%q: %w", cfg.URL, ErrConfig)
	}
	ext, err := url.Parse(cfg.ExternalURL)
	if err != nil || ext.Scheme == "" || ext.Host == "" {
		return nil, fmt.Errorf("parse external url=%q: %w", cfg.ExternalURL, ErrConfig)
	}
	if cfg.User == "" || cfg.Password == "" || cfg.Store == nil {
		return nil, fmt.Errorf("need grafana user, password and store: %w", ErrConfig)
	}
	cfg = withDefaults(cfg)

	transport := http.DefaultTransport.(*http.Transport).Clone()
	api := goapi.NewHTTPClientWithConfig(strfmt.Default, &goapi.TransportConfig{
		Host:      u.Host,
		BasePath:  path.Join("/", u.Path, "api"),
		Schemes:   []string{u.Scheme},
		BasicAuth: url.UserPassword(cfg.User, cfg.Password),
		Client:    &http.Client{Timeout: cfg.RequestTimeout, Transport: transport},
	})
	return &Syncer{
		api:         api,
		adminUser:   cfg.User,
		externalURL: strings.TrimSuffix(cfg.ExternalURL, "/"),
		store:       cfg.Store,
		log:         cfg.Logger,
		resync:      cfg.ResyncInterval,
		minBackoff:  cfg.MinBackoff,
		pending:     map[string]bool{},
		changed:     make(chan struct{}, 1),
		orgs:        map[int64]string{},
	}, nil
}

// withDefaults fills the zero fields of cfg.
func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = DefaultResyncInterval
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = defaultMinBackoff
	}
	return cfg
}

// ProjectChanged queues a pass over one project. It never blocks.
func (s *Syncer) ProjectChanged(projectID string) {
	s.mu.Lock()
	s.pending[projectID] = true
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Run syncs at once, then every ResyncInterval and whenever a project
// changes, until ctx ends. A failed pass is retried after a backoff that
// starts at MinBackoff and doubles up to ResyncInterval. It returns nil when
// ctx ends.
func (s *Syncer) Run(ctx context.Context) error {
	backoff := s.minBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			// Queued projects are covered by the full pass.
			s.takePending()
		case <-s.changed:
			if err := s.syncPending(ctx); err != nil {
				s.log.Warn("grafana sync of changed projects failed", "error", err)
				timer.Reset(backoff)
			}
			continue
		}

		if err := s.SyncOnce(ctx); err != nil {
			s.log.Warn("grafana sync failed", "error", err, "retry_in", backoff)
			timer.Reset(backoff)
			backoff = min(2*backoff, s.resync)
			continue
		}
		backoff = s.minBackoff
		timer.Reset(s.resync)
	}
}

// takePending empties the queue of changed projects and returns it.
func (s *Syncer) takePending() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.pending))
	for id := range s.pending {
		ids = append(ids, id)
	}
	clear(s.pending)
	return ids
}

// syncPending syncs each queued project.
func (s *Syncer) syncPending(ctx context.Context) error {
	s.passMu.Lock()
	defer s.passMu.Unlock()
	var errs []error
	for _, id := range s.takePending() {
		p, err := s.store.ProjectByID(ctx, id)
		if errors.Is(err, tenancy.ErrNotFound) {
			continue // the next full pass sweeps its organization
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("get project project_id=%q: %w", id, err))
			continue
		}
		errs = append(errs, s.syncProject(ctx, p))
	}
	return errors.Join(errs...)
}

// SyncOnce makes one full pass: the admin dashboards, every project, and the
// organizations of projects gone from the store. It goes on past a failing
// project and returns every error.
func (s *Syncer) SyncOnce(ctx context.Context) error {
	s.passMu.Lock()
	defer s.passMu.Unlock()

	var errs []error
	if err := s.syncAdmin(ctx); err != nil {
		errs = append(errs, err)
	}

	projects, err := s.allProjects(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range projects {
		if err := s.syncProject(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.sweep(ctx, projects); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// allProjects reads every project from the store, page by page.
func (s *Syncer) allProjects(ctx context.Context) ([]*tenancy.Project, error) {
	var out []*tenancy.Project
	page := tenancy.Page{Limit: 200}
	for {
		list, next, err := s.store.ListProjects(ctx, tenancy.ProjectFilter{Page: page})
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, list...)
		if next == "" {
			return out, nil
		}
		page.Cursor = next
	}
}

// syncAdmin puts the admin dashboards into the main organization.
func (s *Syncer) syncAdmin(ctx context.Context) error {
	desired, err := dashboards.Admin()
	if err != nil {
		return fmt.Errorf("build admin dashboards: %w", err)
	}
	if err := s.syncDashboards(ctx, s.inOrg(mainOrgID), desired); err != nil {
		return fmt.Errorf("sync admin dashboards: %w", err)
	}
	return nil
}

// mainOrgID is the organization Grafana starts with.
const mainOrgID int64 = 1

// inOrg returns a client whose org-scoped calls address organization id.
func (s *Syncer) inOrg(id int64) *goapi.GrafanaHTTPAPI {
	return s.api.Clone().WithOrgID(id)
}

// withContext makes a Grafana call honour ctx. Every client package accepts it.
func withContext(ctx context.Context) func(*runtime.ClientOperation) {
	return func(op *runtime.ClientOperation) { op.Context = ctx }
}

// isCode reports whether err is Grafana's answer with that HTTP status.
func isCode(err error, code int) bool {
	var c interface{ IsCode(int) bool }
	return errors.As(err, &c) && c.IsCode(code)
}

// reason classifies a failed sync for the GrafanaReady condition.
func reason(err error) string {
	var answered interface {
		IsCode(int) bool
		IsServerError() bool
	}
	switch {
	case errors.Is(err, ErrOrganizationTaken):
		return ReasonOrganizationTaken
	case errors.Is(err, ErrDashboardTitleTaken):
		return ReasonDashboardTitleTaken
	case errors.As(err, &answered) && answered.IsServerError():
		return ReasonUnavailable
	case errors.As(err, &answered) && (answered.IsCode(401) || answered.IsCode(403)):
		return ReasonUnauthorized
	case errors.As(err, &answered), errors.Is(err, context.Canceled):
		return ReasonSyncFailed
	default:
		return ReasonUnavailable // no HTTP answer: Grafana is unreachable
	}
}
