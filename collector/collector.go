// Package collector runs Canopy's collector cycle: every interval it takes
// the targets of this shard (discovered nodes and the static targets file),
// scrapes them all, gathers the pods (from a Pod informer, else from the
// kubelets' /pods), and hands both to the aggregator, which serves the
// per-namespace figures as Prometheus metrics and through
// tenancy.UsageReader.
//
// It owns the wiring and the timing: cycles never overlap, a cycle that
// overruns its interval makes the next ones skip and be counted. Discovery,
// scraping and aggregation live in collector/discovery, collector/scrape and
// collector/aggregate.
package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"canopy.dev/canopy/collector/aggregate"
	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/tenancy"
)

// Defaults of Config.
const (
	DefaultInterval = 15 * time.Second
	// DefaultTokenFile and DefaultCAFile are the service account's, mounted
	// in every pod; cmd/canopy passes them for direct access in a cluster.
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// ErrNoTargets means the collector has neither a cluster nor a static
// targets file, so there is nothing it could scrape.
var ErrNoTargets = errors.New("no cluster and no static targets file")

// Config configures a Collector. Zero fields take their defaults.
type Config struct {
	Logger *slog.Logger
	// Kubernetes is the cluster to discover nodes and pods in; nil: no
	// cluster, static targets only, pods from the kubelets' /pods.
	Kubernetes kubernetes.Interface
	// REST is the client configuration of Kubernetes; proxy access needs it.
	REST *rest.Config
	// Access is how discovered kubelets are reached; default direct.
	Access discovery.Access
	// TokenFile, CAFile and InsecureSkipVerify apply to discovered kubelets
	// reached directly; static targets carry their own.
	TokenFile          string
	CAFile             string
	InsecureSkipVerify bool
	// TargetsFile is the static targets file (CANOPY_SCRAPE_TARGETS). It is
	// read again when it changes; a broken edit keeps the last good list.
	TargetsFile string
	// Interval is the cycle; default 15 s.
	Interval time.Duration
	// Timeout bounds one target's scrape; default two thirds of Interval,
	// at most 10 s.
	Timeout      time.Duration
	Concurrency  int   // scrapes in flight; default 64
	MaxBodyBytes int64 // default 64 MiB
	Shard        discovery.Shard
	// Aggregate configures the aggregator; its Interval and Logger are set
	// from this Config.
	Aggregate aggregate.Options
}

// Collector scrapes, aggregates and serves. It is a prometheus.Collector (the
// aggregator's families plus the cycle's own) and a tenancy.UsageReader.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	agg     *aggregate.Aggregator
	scraper *scrape.Scraper

	factory informers.SharedInformerFactory // nil without a cluster
	nodes   *discovery.Nodes
	pods    *discovery.Pods // nil: pods come from kubelet-pods targets

	static     staticTargets
	kubePods   *kubeletPods
	machines   *machines
	running    sync.Mutex // held by a cycle
	cycleStats cycleMetrics
}

var (
	_ prometheus.Collector = (*Collector)(nil)
	_ tenancy.UsageReader  = (*Collector)(nil)
)

// New checks cfg, loads the static targets file and builds the sources. It
// starts nothing: Run does.
func New(cfg Config) (*Collector, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cfg.Aggregate.Logger = cmp.Or(cfg.Aggregate.Logger, cfg.Logger)
	cfg.Aggregate.Interval = cfg.Interval

	scraper, err := scrape.New(scrape.Options{
		Logger: cfg.Logger, Timeout: cfg.Timeout, Concurrency: cfg.Concurrency,
		MaxBodyBytes: cfg.MaxBodyBytes, APIServer: cfg.REST,
	})
	if err != nil {
		return nil, fmt.Errorf("create collector: %w", err)
	}
	c := &Collector{
		cfg: cfg, log: cfg.Logger, scraper: scraper,
		agg:        aggregate.New(cfg.Aggregate),
		static:     staticTargets{path: cfg.TargetsFile, log: cfg.Logger},
		kubePods:   newKubeletPods(cfg.Logger, 2*cfg.Interval),
		machines:   newMachines(cfg.Logger),
		cycleStats: newCycleMetrics(),
	}
	if cfg.TargetsFile != "" {
		if err := c.static.load(); err != nil {
			return nil, fmt.Errorf("create collector: %w", err)
		}
	}
	if cfg.Kubernetes != nil {
		if err := c.watchCluster(); err != nil {
			return nil, fmt.Errorf("create collector: %w", err)
		}
	}
	return c, nil
}

// setDefaults fills defaults and checks what cannot work.
func (cfg *Config) setDefaults() error {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	cfg.Access = cmp.Or(cfg.Access, discovery.Direct)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Timeout = cmp.Or(cfg.Timeout, min(cfg.Interval*2/3, 10*time.Second))

	var errs []error
	if cfg.Kubernetes == nil && cfg.TargetsFile == "" {
		errs = append(errs, ErrNoTargets)
	}
	if err := cfg.Access.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Access == discovery.Proxy && cfg.Kubernetes != nil && cfg.REST == nil {
		errs = append(errs, fmt.Errorf("proxy access needs the cluster's REST config: %w",
			discovery.ErrInvalidAccess))
	}
	if err := cfg.Shard.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Timeout > cfg.Interval {
		errs = append(errs, fmt.Errorf("scrape timeout %s exceeds the interval %s",
			cfg.Timeout, cfg.Interval))
	}
	if len(errs) > 0 {
		return fmt.Errorf("check collector config: %w", errors.Join(errs...))
	}
	return nil
}

// watchCluster registers the Node and Pod informers.
func (c *Collector) watchCluster() error {
	c.factory = informers.NewSharedInformerFactory(c.cfg.Kubernetes, 0)
	opts := discovery.NodeOptions{
		Logger: c.log, Access: c.cfg.Access, TokenFile: c.cfg.TokenFile,
		CAFile: c.cfg.CAFile, InsecureSkipVerify: c.cfg.InsecureSkipVerify, Shard: c.cfg.Shard,
	}
	if c.cfg.REST != nil {
		// Host may lack a scheme or carry a path prefix: normalise it.
		base, _, err := rest.DefaultServerUrlFor(c.cfg.REST)
		if err != nil {
			return fmt.Errorf("read API server url: %w", err)
		}
		opts.APIServer = base.String()
	}
	nodes, err := discovery.NewNodes(c.factory, opts)
	if err != nil {
		return err
	}
	pods, err := discovery.NewPods(c.factory, c.cfg.Shard)
	if err != nil {
		return err
	}
	c.nodes, c.pods = nodes, pods
	return nil
}

// Aggregator returns the aggregator, for callers that want it directly.
func (c *Collector) Aggregator() *aggregate.Aggregator { return c.agg }

// Run starts the informers, waits for their first list, and runs a cycle
// every interval until ctx ends. It returns nil when ctx ends, or an error
// if the informers could not sync.
func (c *Collector) Run(ctx context.Context) error {
	if c.factory != nil {
		c.factory.Start(ctx.Done())
		defer c.factory.Shutdown()
		if !cache.WaitForCacheSync(ctx.Done(), c.nodes.HasSynced, c.pods.HasSynced) {
			if ctx.Err() != nil {
				return nil
			}
			return errors.New("sync node and pod informers: did not sync")
		}
	}
	c.log.Info("collector started", "interval", c.cfg.Interval, "access", string(c.cfg.Access),
		"shard", c.cfg.Shard.Index, "shards", max(c.cfg.Shard.Count, 1))

	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	for {
		c.timedCycle(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// timedCycle runs one cycle and counts the ticks it overran. The ticker drops
// those ticks itself, so cycles never overlap.
func (c *Collector) timedCycle(ctx context.Context) {
	start := time.Now()
	st, err := c.Cycle(ctx)
	took := time.Since(start)
	if err != nil {
		c.log.Error("collector cycle failed", "duration", took, "error", err)
		return
	}
	if skipped := int(took / c.cfg.Interval); skipped > 0 {
		c.cycleStats.skipped.Add(float64(skipped))
		c.log.Warn("collector cycle overran its interval", "duration", took,
			"interval", c.cfg.Interval, "skipped", skipped, "payloads", st.Payloads)
	}
}

// Cycle runs one whole cycle now: targets, scrapes, pods, aggregation. It
// waits for a cycle already running to end, so two never overlap. The
// cycle's deadline is one interval.
func (c *Collector) Cycle(ctx context.Context) (aggregate.CycleStats, error) {
	c.running.Lock()
	defer c.running.Unlock()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Interval)
	defer cancel()

	targets, err := c.targets()
	if err != nil {
		return aggregate.CycleStats{}, err
	}
	var pods []source.Pod
	if c.pods != nil {
		if pods, err = c.pods.List(); err != nil {
			return aggregate.CycleStats{}, fmt.Errorf("gather pods: %w", err)
		}
	}
	c.machines.refresh(ctx, targets)

	// Each metrics body is read into the aggregator as it arrives, a window
	// at a time, so no body is ever whole in memory. The kubelets' /pods
	// answers are pod facts, not usage, and are kept apart.
	c.agg.BeginCycle()
	c.scraper.StreamBodies(ctx, targets, func(p source.Payload, body io.Reader) error {
		if p.Target.Kind == source.KubeletPods {
			if c.pods == nil {
				c.kubePods.observe(p, start)
			}
			return nil
		}
		return c.agg.AddFrom(p, body)
	})
	if c.pods == nil {
		pods = c.kubePods.current(start)
	}
	st := c.agg.EndCycle(pods)
	c.cycleStats.observe(time.Since(start), len(targets))
	return st, nil
}

// targets merges the static targets with the discovered ones of this shard.
func (c *Collector) targets() ([]source.Target, error) {
	static := c.static.current(c.cfg.Shard)
	if c.nodes == nil {
		return static, nil
	}
	discovered, err := c.nodes.Targets()
	if err != nil {
		return nil, fmt.Errorf("discover targets: %w", err)
	}
	return discovery.Merge(static, discovered), nil
}

// Machines returns the machine facts read from standalone cAdvisors.
func (c *Collector) Machines() []scrape.Machine { return c.machines.list() }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.agg.Describe(ch)
	c.cycleStats.describe(ch)
	ch <- nodeCoresDesc
	ch <- nodeMemoryDesc
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.agg.Collect(ch)
	c.cycleStats.collect(ch)
	for _, m := range c.machines.list() {
		ch <- prometheus.MustNewConstMetric(nodeCoresDesc, prometheus.GaugeValue,
			float64(m.Cores), m.Node)
		ch <- prometheus.MustNewConstMetric(nodeMemoryDesc, prometheus.GaugeValue,
			float64(m.MemoryCapacityBytes), m.Node)
	}
}

// Machine facts of standalone cAdvisor hosts, read from cAdvisor's REST API.
var (
	nodeCoresDesc = prometheus.NewDesc("canopy_node_cpu_cores",
		"Logical CPU cores of a standalone cAdvisor host, from its REST API.",
		[]string{"node"}, nil)
	nodeMemoryDesc = prometheus.NewDesc("canopy_node_memory_capacity_bytes",
		"Memory capacity of a standalone cAdvisor host, from its REST API.",
		[]string{"node"}, nil)
)

// NamespaceUsage implements tenancy.UsageReader.
func (c *Collector) NamespaceUsage(ns string) (tenancy.NamespaceUsage, bool) {
	return c.agg.NamespaceUsage(ns)
}

// ClusterUsage implements tenancy.UsageReader.
func (c *Collector) ClusterUsage() tenancy.ClusterUsage { return c.agg.ClusterUsage() }

// staticTargets is the static targets file, read again when it changes.
type staticTargets struct {
	path    string
	log     *slog.Logger
	mod     time.Time
	size    int64
	targets []source.Target
}

// load reads the file; on error the last good targets stay.
func (s *staticTargets) load() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("stat static targets: %w", err)
	}
	targets, err := discovery.LoadTargets(s.path)
	if err != nil {
		return err
	}
	s.mod, s.size, s.targets = fi.ModTime(), fi.Size(), targets
	return nil
}

// current returns the shard's static targets, reloading a changed file.
func (s *staticTargets) current(shard discovery.Shard) []source.Target {
	if s.path == "" {
		return nil
	}
	fi, err := os.Stat(s.path)
	if err == nil && (!fi.ModTime().Equal(s.mod) || fi.Size() != s.size) {
		if err := s.load(); err != nil {
			s.log.Error("static targets file changed but is invalid; keeping the last good list",
				"path", s.path, "error", err)
			s.mod, s.size = fi.ModTime(), fi.Size() // report once per change
		} else {
			s.log.Info("static targets reloaded", "path", s.path, "targets", len(s.targets))
		}
	}
	out := make([]source.Target, 0, len(s.targets))
	for _, t := range s.targets {
		if shard.Owns(t.Node) {
			out = append(out, t)
		}
	}
	return out
}
