package collector

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
)

// kubeletPods keeps each node's last good /pods answer, for clusters
// without an API server. A node whose /pods fails keeps its pods for
// keepFor (two intervals), like a failed node's usage, then loses them.
type kubeletPods struct {
	log     *slog.Logger
	keepFor time.Duration

	mu    sync.Mutex
	nodes map[string]*nodePods
}

type nodePods struct {
	pods []source.Pod
	at   time.Time // of the last good answer
	seen time.Time // of the last answer, good or not
	up   bool
}

func newKubeletPods(log *slog.Logger, keepFor time.Duration) *kubeletPods {
	return &kubeletPods{log: log, keepFor: keepFor, nodes: make(map[string]*nodePods)}
}

// observe reads one node's /pods answer of this cycle. It is safe for
// concurrent use; the body is not used after it returns.
func (k *kubeletPods) observe(p source.Payload, now time.Time) {
	var pods []source.Pod
	err := p.Err
	if err == nil {
		pods, err = discovery.DecodePodList(p.Body, p.Target.Node)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.nodes[p.Target.Node]
	if n == nil {
		n = &nodePods{up: true}
		k.nodes[p.Target.Node] = n
	}
	n.seen = now
	if err == nil {
		n.pods, n.at = pods, now
	}
	k.note(p.Target.Node, n, err)
}

// current returns every node's pods, dropping nodes no longer scraped.
func (k *kubeletPods) current(now time.Time) []source.Pod {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []source.Pod
	for name, n := range k.nodes {
		switch {
		case now.Sub(n.seen) > k.keepFor:
			delete(k.nodes, name) // no longer a target
		case now.Sub(n.at) <= k.keepFor:
			out = append(out, n.pods...)
		}
	}
	return out
}

// note logs a node's /pods when it starts or stops failing.
func (k *kubeletPods) note(node string, n *nodePods, err error) {
	switch {
	case err != nil && n.up:
		k.log.Warn("target down", "node", node, "endpoint", string(source.KubeletPods),
			"error", err)
	case err == nil && !n.up:
		k.log.Info("target up", "node", node, "endpoint", string(source.KubeletPods))
	}
	n.up = err == nil
}

// machines reads standalone cAdvisors' machine facts in the background:
// once when a target appears, again every machineRefresh, and after a
// failure no sooner than machineRetry.
type machines struct {
	log *slog.Logger

	mu       sync.Mutex
	facts    map[string]scrape.Machine
	readAt   map[string]time.Time
	failedAt map[string]time.Time
	inFlight map[string]bool
}

const (
	machineRefresh = 10 * time.Minute
	machineRetry   = time.Minute
	machineTimeout = 10 * time.Second
)

func newMachines(log *slog.Logger) *machines {
	return &machines{
		log: log, facts: make(map[string]scrape.Machine), readAt: make(map[string]time.Time),
		failedAt: make(map[string]time.Time), inFlight: make(map[string]bool),
	}
}

// refresh starts a read for every cadvisor target whose facts are due. It
// never waits for the reads: they do not delay the cycle.
func (m *machines) refresh(ctx context.Context, targets []source.Target) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range targets {
		due := now.Sub(m.readAt[t.Node]) >= machineRefresh &&
			now.Sub(m.failedAt[t.Node]) >= machineRetry
		if t.Kind != source.Cadvisor || m.inFlight[t.Node] || !due {
			continue
		}
		m.inFlight[t.Node] = true
		go m.read(context.WithoutCancel(ctx), t)
	}
}

// read reads one target's facts and records the answer.
func (m *machines) read(ctx context.Context, t source.Target) {
	ctx, cancel := context.WithTimeout(ctx, machineTimeout)
	defer cancel()
	facts, err := scrape.ReadMachine(ctx, t)

	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inFlight, t.Node)
	if err != nil {
		if m.failedAt[t.Node].IsZero() {
			m.log.Warn("read cadvisor machine facts", "node", t.Node, "error", err)
		}
		m.failedAt[t.Node] = time.Now()
		return
	}
	if _, known := m.facts[t.Node]; !known {
		m.log.Info("cadvisor machine facts", "node", t.Node, "cores", facts.Cores,
			"memory_bytes", facts.MemoryCapacityBytes)
	}
	m.facts[t.Node], m.readAt[t.Node] = facts, time.Now()
	delete(m.failedAt, t.Node)
}

// list returns the facts read so far, sorted by node.
func (m *machines) list() []scrape.Machine {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]scrape.Machine, 0, len(m.facts))
	for _, f := range m.facts {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b scrape.Machine) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// cycleMetrics are the collector loop's own families.
type cycleMetrics struct {
	duration prometheus.Histogram
	skipped  prometheus.Counter
	targets  prometheus.Gauge
}

func newCycleMetrics() cycleMetrics {
	return cycleMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "canopy_collector_cycle_duration_seconds",
			Help:    "Time one collector cycle took: scraping every target and aggregating.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60},
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "canopy_collector_cycles_skipped_total",
			Help: "Cycles not started because the previous one overran its interval.",
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_collector_targets",
			Help: "Targets scraped in the last cycle, static and discovered, of this shard.",
		}),
	}
}

func (m cycleMetrics) observe(d time.Duration, targets int) {
	m.duration.Observe(d.Seconds())
	m.targets.Set(float64(targets))
}

func (m cycleMetrics) describe(ch chan<- *prometheus.Desc) {
	m.duration.Describe(ch)
	m.skipped.Describe(ch)
	m.targets.Describe(ch)
}

func (m cycleMetrics) collect(ch chan<- prometheus.Metric) {
	m.duration.Collect(ch)
	m.skipped.Collect(ch)
	m.targets.Collect(ch)
}
