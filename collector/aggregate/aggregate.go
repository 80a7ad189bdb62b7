// Package aggregate turns what the collector's sources yield in one cycle
// (raw kubelet and cAdvisor answers, pod facts) into per-namespace, per-app
// and per-pod figures, and serves them as Prometheus metrics and through
// tenancy.UsageReader.
//
// It owns the aggregation rules: which cgroups count, one current instance
// per container, stale samples, counters that never decrease, pod network
// counted once, and one endpoint per pod so that no usage is added twice. It
// does not scrape, discover nodes or watch pods (collector/scrape,
// collector/discovery and the root collector package do), and it reads
// bodies only through collector/parse.
//
// Per pod, CPU and memory come from /metrics/cadvisor's application
// containers; where the pod has none, from its pod cgroup; where cAdvisor
// has nothing of the pod, from /metrics/resource; and where neither has
// it, from /stats/summary. Network comes from cAdvisor, else from
// /stats/summary. canopy_namespace_pods_usage_source says which source
// served how many pods.
package aggregate

import (
	"cmp"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/tenancy"
)

// Options configure an Aggregator. Zero fields take their defaults.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// NamespaceFilter says which namespaces are tenants and their project
	// label. Nil: every namespace; a namespace with NamespacePrefix has the
	// rest of its name as project, any other an empty project label.
	NamespaceFilter func(ns string) (project string, ok bool)
	// NamespacePrefix is cut from a namespace to name its project when
	// NamespaceFilter is nil. Default "canopy-".
	NamespacePrefix string
	// StaleAfter: a sample whose own timestamp is this much older than the
	// newest sample of the same scrape does not count. Default 2 minutes.
	StaleAfter time.Duration
	// Interval is the collector cycle: a failed endpoint's last good data is
	// used for two intervals. Default 15 seconds.
	Interval time.Duration
	// ForgetAfter: counter state of a container unseen this long is dropped,
	// and so are a pod's series. Default 10 minutes.
	ForgetAfter time.Duration
	// Workers parse nodes in parallel. Default GOMAXPROCS.
	Workers int
}

func (o *Options) setDefaults() {
	o.Logger = cmp.Or(o.Logger, slog.Default())
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NamespaceFilter == nil {
		prefix := cmp.Or(o.NamespacePrefix, "canopy-")
		// Every namespace is aggregated (admins see the whole cluster); only
		// a tenant's carries a project label, so that a project can never
		// share its label with a system namespace.
		o.NamespaceFilter = func(ns string) (string, bool) {
			if project, ok := strings.CutPrefix(ns, prefix); ok {
				return project, true
			}
			return "", true
		}
	}
	o.StaleAfter = cmp.Or(o.StaleAfter, 2*time.Minute)
	o.Interval = cmp.Or(o.Interval, 15*time.Second)
	o.ForgetAfter = cmp.Or(o.ForgetAfter, 10*time.Minute)
	o.Workers = cmp.Or(o.Workers, runtime.GOMAXPROCS(0))
}

// Aggregator keeps the collector's state across cycles and serves its
// latest figures. One cycle runs at a time: Cycle, or BeginCycle, Add from
// any number of goroutines, then EndCycle. Collect and the UsageReader
// methods may run concurrently with a cycle.
type Aggregator struct {
	opts     Options
	log      *slog.Logger
	mu       sync.Mutex // guards nodes and cur while Add runs
	cur      *cycle     // the cycle begun, nil between cycles
	nodes    map[string]*node
	pods     map[podKey]*podState
	spaces   map[string]*counters
	apps     map[appKey]*counters
	projects map[string]projectOf
	restarts map[string]*restartTrack // by pod UID, else namespace/name
	last     atomic.Pointer[snapshot]
	forgetNS atomic.Bool
}

var (
	_ prometheus.Collector = (*Aggregator)(nil)
	_ tenancy.UsageReader  = (*Aggregator)(nil)
)

type podKey struct{ ns, pod string }
type appKey struct{ ns, app string }

type projectOf struct {
	project string
	ok      bool
}

// counters are the monotonic totals of a namespace, app or pod.
type counters struct {
	cpu, rx, tx, oom, restarts float64
}

func (c *counters) add(u *podUsage) {
	c.cpu += u.cpu
	c.rx += u.rx
	c.tx += u.tx
	c.oom += u.oom
}

// podState is what Canopy keeps of one pod across cycles.
type podState struct {
	ns, pod, app, project string
	counters
	seen time.Time
}

type restartTrack struct {
	last float64
	seen time.Time
}

// CycleStats sums up one cycle.
type CycleStats struct {
	Nodes    int           // nodes with at least one payload
	Payloads int           // payloads received
	Failed   int           // payloads that counted as failures
	Samples  int           // samples of Canopy's families read
	Pods     int           // pods with figures in the new snapshot
	Duration time.Duration // from the cycle's beginning to its end
}

// New returns an Aggregator with nothing seen yet.
func New(opts Options) *Aggregator {
	opts.setDefaults()
	a := &Aggregator{
		opts: opts, log: opts.Logger,
		nodes: make(map[string]*node), pods: make(map[podKey]*podState),
		spaces: make(map[string]*counters), apps: make(map[appKey]*counters),
		projects: make(map[string]projectOf), restarts: make(map[string]*restartTrack),
	}
	a.last.Store(&snapshot{})
	return a
}

// Cycle runs one collector cycle over payloads held all at once: it is
// BeginCycle, Add of every payload (nodes in parallel, each node's payloads
// in order) and EndCycle. The collector streams payloads instead, so that
// bodies are not all in memory together.
func (a *Aggregator) Cycle(payloads []source.Payload, pods []source.Pod) CycleStats {
	a.BeginCycle()
	byNode := make(map[string][]*source.Payload)
	var names []string
	for k := range payloads {
		p := &payloads[k]
		if _, ok := byNode[p.Target.Node]; !ok {
			names = append(names, p.Target.Node)
		}
		byNode[p.Target.Node] = append(byNode[p.Target.Node], p)
	}
	a.parallel(len(names), func(k int) {
		for _, p := range byNode[names[k]] {
			_ = a.add(p, nil)
		}
	})
	return a.EndCycle(pods)
}

// cycle is the state of the cycle between BeginCycle and EndCycle.
type cycle struct {
	start    time.Time
	before   map[*target]bool // target health when the cycle began
	touched  map[string]*node // nodes with at least one payload
	payloads int
	failed   int
}

// BeginCycle starts a cycle: Add then takes its payloads one at a time, and
// EndCycle applies the rules and swaps in the new figures. A cycle already
// begun and not ended is discarded, its payloads' data kept.
func (a *Aggregator) BeginCycle() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur = &cycle{start: a.opts.Now(), before: a.health(), touched: make(map[string]*node)}
}

// Add parses one payload of the current cycle into its node's state at
// once, so the body is not used after Add returns and its buffer can be
// reused. A payload with Err set counts as a failed scrape of its node and
// endpoint. Add is safe for concurrent use between BeginCycle and EndCycle;
// payloads of one node are read one after the other. Without BeginCycle, Add
// begins a cycle itself.
func (a *Aggregator) Add(p source.Payload) {
	_ = a.AddFrom(p, nil)
}

// AddFrom is Add for a metrics answer whose body is read from body a window
// at a time rather than held in p.Body, so that the body is never whole in
// memory. An error of body ends the reading and counts as a failed scrape,
// like p.Err would; AddFrom returns it. The time spent reading is added to
// the endpoint's scrape duration. A nil body is Add.
func (a *Aggregator) AddFrom(p source.Payload, body io.Reader) error {
	return a.add(&p, body)
}

func (a *Aggregator) add(p *source.Payload, body io.Reader) error {
	a.mu.Lock()
	if a.cur == nil {
		a.cur = &cycle{start: a.opts.Now(), before: a.health(), touched: make(map[string]*node)}
	}
	c := a.cur
	n := a.nodes[p.Target.Node]
	if n == nil {
		n = newNode(p.Target.Node, &a.opts)
		a.nodes[p.Target.Node] = n
	}
	if c.touched[n.name] == nil {
		c.touched[n.name] = n
		n.begin(c.start)
	}
	c.payloads++
	a.mu.Unlock()

	n.mu.Lock()
	up, err := n.processPayload(p, body, c.start)
	n.mu.Unlock()
	if !up {
		a.mu.Lock()
		c.failed++
		a.mu.Unlock()
	}
	return err
}

// EndCycle ends the cycle begun by BeginCycle: it applies the rules that
// need every node and pod, advances the counters and swaps in the new
// figures atomically. No Add of the cycle may still be running.
func (a *Aggregator) EndCycle(pods []source.Pod) CycleStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cur
	if c == nil {
		c = &cycle{start: a.opts.Now(), before: a.health(), touched: make(map[string]*node)}
	}
	a.cur = nil
	now := c.start

	podIndex := make(map[podKey]*source.Pod, len(pods))
	for k := range pods {
		podIndex[podKey{pods[k].Namespace, pods[k].Name}] = &pods[k]
	}
	work := make([]*node, 0, len(c.touched))
	for _, n := range c.touched {
		work = append(work, n)
	}
	a.parallel(len(work), func(k int) {
		work[k].assemble(podIndex, now)
		work[k].forget(now)
	})

	// Nodes without payloads this cycle still serve their recent data.
	for name, n := range a.nodes {
		if c.touched[name] != nil {
			continue
		}
		if now.Sub(n.lastAt) > a.opts.ForgetAfter {
			delete(a.nodes, name)
			continue
		}
		n.assemble(podIndex, now)
	}
	a.logChanges(c.before)

	snap := a.merge(pods, podIndex, now)
	a.last.Store(snap)

	st := CycleStats{Nodes: len(c.touched), Payloads: c.payloads, Failed: c.failed,
		Pods: len(snap.pods)}
	for _, n := range work {
		for _, t := range n.targets {
			st.Samples += t.samples
		}
	}
	st.Duration = a.opts.Now().Sub(c.start)
	return st
}

// parallel calls fn(0) to fn(count-1) on opts.Workers goroutines.
func (a *Aggregator) parallel(count int, fn func(k int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(a.opts.Workers, count) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= count {
					return
				}
				fn(k)
			}
		})
	}
	wg.Wait()
}

// health returns whether each target was up, to log changes only.
func (a *Aggregator) health() map[*target]bool {
	m := make(map[*target]bool)
	for _, n := range a.nodes {
		for _, t := range n.targets {
			m[t] = t.up
		}
	}
	return m
}

// logChanges logs the targets whose state changed in this cycle.
func (a *Aggregator) logChanges(before map[*target]bool) {
	for _, n := range a.nodes {
		for _, t := range n.targets {
			was, known := before[t]
			if known && was == t.up || !known && t.up {
				continue
			}
			if t.up {
				a.log.Info("target up", "node", t.node, "endpoint", string(t.kind))
				continue
			}
			a.log.Warn("target down", "node", t.node, "endpoint", string(t.kind),
				"error", t.lastErr)
		}
	}
}

// project returns a namespace's project, caching the filter's answer.
func (a *Aggregator) project(ns string) (string, bool) {
	p, ok := a.projects[ns]
	if !ok {
		p.project, p.ok = a.opts.NamespaceFilter(ns)
		a.projects[ns] = p
	}
	return p.project, p.ok
}

// ForgetNamespaces drops the cached answers of NamespaceFilter at the start
// of the next cycle; call it when tenants change. It is safe to call from
// any goroutine.
func (a *Aggregator) ForgetNamespaces() {
	a.forgetNS.Store(true)
}
