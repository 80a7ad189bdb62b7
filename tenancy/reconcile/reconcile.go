// Package reconcile makes a Kubernetes cluster match the projects and apps in
// Canopy's store: a project becomes a namespace with a ResourceQuota, a
// LimitRange and a NetworkPolicy; an app becomes a Deployment and a Service.
//
// The reconciler is level-triggered. It reads what users asked for from the
// tenancy.Store and what exists from shared informers, writes only the
// difference with server-side apply (field manager "canopy"), and writes
// status and conditions back to the store. Work is queued per project ID and
// retried with exponential backoff; a change notice, an event on a managed
// object or the periodic resync queues a project. Several replicas elect one
// leader through a Lease, and only the leader writes.
//
// It owns only objects labelled app.kubernetes.io/managed-by=canopy: it never
// adopts, changes or deletes anything else, and it never touches Grafana or
// the store's user-facing fields.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"canopy.dev/canopy/tenancy"
)

// Labels and names Canopy puts on the objects it manages.
const (
	// FieldManager is the server-side apply field manager of every write.
	FieldManager = "canopy"
	// LabelManagedBy marks an object as Canopy's; nothing else is changed.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelProject holds the project name on every managed object.
	LabelProject = "canopy.dev/project"
	// LabelAppName holds the app name on an app's Deployment, Service and pods.
	LabelAppName = "app.kubernetes.io/name"
	// AnnotationProjectID maps an object back to its project's store ID.
	AnnotationProjectID = "canopy.dev/project-id"
	// ConditionClusterReady is the project condition type the reconciler owns.
	ConditionClusterReady = "ClusterReady"
	// ConditionAvailable is the app condition type the reconciler owns.
	ConditionAvailable = "Available"

	managedByValue = "canopy"
	// objectName names the quota, limit range and network policy of a project.
	objectName = "canopy"
)

// ErrNoCluster means no Kubernetes client was configured, so the reconciler
// cannot run.
var ErrNoCluster = errors.New("no Kubernetes cluster configured")

// Config configures a Reconciler. Zero fields take the defaults New documents.
type Config struct {
	// Store holds the desired state and receives status; required.
	Store tenancy.Store
	// Client talks to the cluster; required (nil means no cluster).
	Client kubernetes.Interface
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now; it stamps condition transitions.
	Now func() time.Time
	// Registerer receives the reconciler's metrics (canopy_reconcile_*);
	// nil leaves them unregistered.
	Registerer prometheus.Registerer

	// NamespacePrefix names a project's namespace when the store does not
	// (default "canopy-").
	NamespacePrefix string
	// ResyncInterval is the period of the full pass (default 1m).
	ResyncInterval time.Duration
	// Workers reconcile projects in parallel (default 2).
	Workers int
	// RetryBaseDelay and RetryMaxDelay bound the per-project exponential
	// backoff after a failed pass (defaults 500ms and 5m).
	RetryBaseDelay, RetryMaxDelay time.Duration
	// SyncTimeout is how long Run waits for the informer caches before it
	// reports the API server as unreachable, and again between reports
	// (default 30s).
	SyncTimeout time.Duration

	// Quota is the hard limit of each project's ResourceQuota.
	Quota corev1.ResourceList
	// LimitDefault and LimitDefaultRequest are each container's default
	// limits and requests in the project's LimitRange.
	LimitDefault, LimitDefaultRequest corev1.ResourceList

	// IngressNamespace and MonitoringNamespace may reach every project's pods
	// besides the project itself (defaults "ingress-nginx" and "monitoring").
	IngressNamespace, MonitoringNamespace string

	// LeaderElection lets several replicas run with one of them writing.
	LeaderElection LeaderElection
}

// LeaderElection configures the Lease through which replicas elect a leader.
type LeaderElection struct {
	// Enabled turns election on; off, the reconciler always leads.
	Enabled bool
	// Namespace and Name locate the Lease (defaults "default" and
	// "canopy-reconciler"); run Canopy with its own namespace here.
	Namespace, Name string
	// Identity names this replica (default hostname plus a random suffix).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod follow client-go's
	// leaderelection (defaults 15s, 10s and 2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// DefaultQuota is the ResourceQuota a project gets unless configured.
func DefaultQuota() corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceRequestsCPU:    resource.MustParse("2"),
		corev1.ResourceRequestsMemory: resource.MustParse("4Gi"),
		corev1.ResourceLimitsCPU:      resource.MustParse("4"),
		corev1.ResourceLimitsMemory:   resource.MustParse("8Gi"),
		corev1.ResourcePods:           resource.MustParse("20"),
	}
}

// DefaultLimits returns the default container limits and requests of a
// project's LimitRange unless configured.
func DefaultLimits() (limit, request corev1.ResourceList) {
	limit = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("500m"),
		corev1.ResourceMemory: resource.MustParse("512Mi"),
	}
	request = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("100m"),
		corev1.ResourceMemory: resource.MustParse("128Mi"),
	}
	return limit, request
}

// Reconciler keeps the cluster in line with the store. It implements
// tenancy.Notifier so that the API can ask for a pass at once.
type Reconciler struct {
	cfg     Config
	store   tenancy.Store
	client  kubernetes.Interface
	log     *slog.Logger
	factory informers.SharedInformerFactory
	cache   listers
	synced  []cache.InformerSynced
	metrics *metrics
	leading atomic.Bool

	// mu guards queue: a queue exists only while this replica leads, so a
	// follower drops notices and the next leader starts with a full pass.
	mu    sync.Mutex
	queue workqueue.TypedRateLimitingInterface[string]
}

var _ tenancy.Notifier = (*Reconciler)(nil)

// New checks cfg, fills its defaults and builds the informers. It returns
// ErrNoCluster when cfg.Client is nil.
func New(cfg Config) (*Reconciler, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("create reconciler: %w", ErrNoCluster)
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("create reconciler: %w: store is nil", tenancy.ErrInvalid)
	}
	cfg = withDefaults(cfg)
	if err := validate(cfg); err != nil {
		return nil, fmt.Errorf("create reconciler: %w", err)
	}

	r := &Reconciler{
		cfg:     cfg,
		store:   cfg.Store,
		client:  cfg.Client,
		log:     cfg.Logger.With("component", "reconciler"),
		metrics: newMetrics(),
	}
	if err := r.metrics.register(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("create reconciler: %w", err)
	}
	r.buildInformers()
	return r, nil
}

func withDefaults(cfg Config) Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NamespacePrefix == "" {
		cfg.NamespacePrefix = "canopy-"
	}
	cfg.ResyncInterval = orDuration(cfg.ResyncInterval, time.Minute)
	cfg.RetryBaseDelay = orDuration(cfg.RetryBaseDelay, 500*time.Millisecond)
	cfg.RetryMaxDelay = orDuration(cfg.RetryMaxDelay, 5*time.Minute)
	cfg.SyncTimeout = orDuration(cfg.SyncTimeout, 30*time.Second)
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Quota == nil {
		cfg.Quota = DefaultQuota()
	}
	limit, request := DefaultLimits()
	if cfg.LimitDefault == nil {
		cfg.LimitDefault = limit
	}
	if cfg.LimitDefaultRequest == nil {
		cfg.LimitDefaultRequest = request
	}
	cfg.IngressNamespace = orString(cfg.IngressNamespace, "ingress-nginx")
	cfg.MonitoringNamespace = orString(cfg.MonitoringNamespace, "monitoring")
	cfg.LeaderElection = leaderDefaults(cfg.LeaderElection)
	return cfg
}

func leaderDefaults(le LeaderElection) LeaderElection {
	le.Namespace = orString(le.Namespace, "default")
	le.Name = orString(le.Name, "canopy-reconciler")
	if le.Identity == "" {
		host, _ := os.Hostname()
		le.Identity = host + "_" + rand.String(8)
	}
	le.LeaseDuration = orDuration(le.LeaseDuration, 15*time.Second)
	le.RenewDeadline = orDuration(le.RenewDeadline, 10*time.Second)
	le.RetryPeriod = orDuration(le.RetryPeriod, 2*time.Second)
	return le
}

func validate(cfg Config) error {
	var errs []error
	if cfg.RetryBaseDelay > cfg.RetryMaxDelay {
		errs = append(errs, fmt.Errorf("%w: retry base delay %s exceeds max delay %s",
			tenancy.ErrInvalid, cfg.RetryBaseDelay, cfg.RetryMaxDelay))
	}
	le := cfg.LeaderElection
	if le.Enabled && (le.LeaseDuration <= le.RenewDeadline || le.RenewDeadline <= le.RetryPeriod) {
		errs = append(errs, fmt.Errorf(
			"%w: leader election needs lease duration > renew deadline > retry period",
			tenancy.ErrInvalid))
	}
	return errors.Join(errs...)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ProjectChanged queues a pass over the project. It implements
// tenancy.Notifier and never blocks; a replica that does not lead ignores it.
//
// TODO(reconcile): with several replicas, a change made through a follower's
// API waits for the leader's next resync (ResyncInterval); relaying notices
// to the leader (for example by watching the store) would make it immediate.
func (r *Reconciler) ProjectChanged(projectID string) {
	r.enqueue(projectID)
}

func (r *Reconciler) enqueue(projectID string) {
	if projectID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queue != nil {
		r.queue.Add(projectID)
	}
}

func (r *Reconciler) enqueueAfter(projectID string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queue != nil {
		r.queue.AddAfter(projectID, d)
	}
}

// Run starts the informers, waits for their caches, then reconciles until ctx
// ends: at once when not electing, else whenever this replica holds the
// Lease. It returns nil when ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	defer r.factory.Shutdown()

	if !r.waitForCaches(ctx) {
		return nil // ctx ended before the caches filled: a normal stop
	}
	r.log.Info("reconciler caches synced", "leader_election", r.cfg.LeaderElection.Enabled)

	if !r.cfg.LeaderElection.Enabled {
		r.lead(ctx)
		return nil
	}
	return r.runElected(ctx)
}

// Leading reports whether this replica leads now: it holds the Lease, or
// leader election is off and Run is running.
func (r *Reconciler) Leading() bool { return r.leading.Load() }

// lead reconciles until ctx ends: a fresh queue, a full pass at once, the
// workers and the periodic resync. It returns once every worker stopped.
func (r *Reconciler) lead(ctx context.Context) {
	limiter := workqueue.NewTypedItemExponentialFailureRateLimiter[string](
		r.cfg.RetryBaseDelay, r.cfg.RetryMaxDelay)
	q := workqueue.NewTypedRateLimitingQueueWithConfig(limiter,
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "canopy_reconcile"})
	r.mu.Lock()
	r.queue = q
	r.mu.Unlock()
	r.metrics.leader.Set(1)
	r.leading.Store(true)
	defer r.metrics.leader.Set(0)
	defer r.leading.Store(false)

	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() { r.work(ctx, q) })
	}
	r.resyncLoop(ctx)

	// Stop taking work, let the running passes end, then forget the queue.
	r.mu.Lock()
	r.queue = nil
	r.mu.Unlock()
	q.ShutDown()
	wg.Wait()
}

// resyncLoop queues every project now and then every ResyncInterval.
func (r *Reconciler) resyncLoop(ctx context.Context) {
	ticker := time.NewTicker(r.cfg.ResyncInterval)
	defer ticker.Stop()
	for {
		if err := r.enqueueAll(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("resync projects", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// enqueueAll queues every project in the store.
func (r *Reconciler) enqueueAll(ctx context.Context) error {
	return r.eachProject(ctx, func(p *tenancy.Project) { r.enqueue(p.ID) })
}

// eachProject calls fn with every project of the store, page by page.
func (r *Reconciler) eachProject(ctx context.Context, fn func(*tenancy.Project)) error {
	f := tenancy.ProjectFilter{Page: tenancy.Page{Limit: 100}}
	for {
		projects, next, err := r.store.ListProjects(ctx, f)
		if err != nil {
			return fmt.Errorf("list projects: %w", err)
		}
		for _, p := range projects {
			fn(p)
		}
		if next == "" {
			return nil
		}
		f.Page.Cursor = next
	}
}

// work reconciles queued projects until the queue shuts down.
func (r *Reconciler) work(ctx context.Context, q workqueue.TypedRateLimitingInterface[string]) {
	for {
		id, shutdown := q.Get()
		if shutdown {
			return
		}
		r.process(ctx, q, id)
	}
}

func (r *Reconciler) process(ctx context.Context,
	q workqueue.TypedRateLimitingInterface[string], id string) {
	defer q.Done(id)

	start := time.Now()
	err := r.reconcileProject(ctx, id)
	r.metrics.duration.Observe(time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.passes.WithLabelValues(result).Inc()
	switch {
	case err == nil:
		q.Forget(id)
		r.log.Debug("reconciled project", "project_id", id, "duration", time.Since(start))
	case ctx.Err() != nil:
		// Stopping: the next leader or the next start picks the project up.
	default:
		r.log.Warn("reconcile project", "project_id", id, "error", err,
			"retries", q.NumRequeues(id))
		q.AddRateLimited(id)
	}
}
