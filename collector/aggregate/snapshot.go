package aggregate

import (
	"maps"
	"slices"
	"time"

	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/tenancy"
)

// Pod phases, always exposed for every namespace and app.
var phases = []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}

// sources are the values of canopy_namespace_pods_usage_source's label.
var sources = []string{SourceCadvisor, SourcePodCgroup, SourceResource, SourceSummary}

// figures are one namespace's, app's or pod's values in one snapshot.
type figures struct {
	counters
	ws, rss, fs      float64
	cpuReq, cpuLim   float64
	memReq, memLim   float64
	cpuCores, rxRate float64
	txRate           float64
	phases           [5]int // in the order of phases
	sources          [4]int // in the order of sources
	// measured counts the pods whose usage a node reported in this cycle;
	// without one, the usage gauges are not exposed rather than shown as 0.
	measured int
}

// row is one namespace, app or pod: its label values and figures.
type row struct {
	ns, project, app, pod string
	figures
}

// targetRow is one endpoint's health.
type targetRow struct {
	node, endpoint string
	up             bool
	duration       float64
	samples        float64
	errors         map[string]float64
	dropped        map[string]float64
}

// snapshot is the immutable result of one cycle, read by Collect and the
// UsageReader methods while the next cycle runs.
type snapshot struct {
	at      time.Time
	spaces  []row
	apps    []row
	pods    []row
	targets []targetRow
	nodes   []tenancy.NodeUsage
	byNS    map[string]int   // namespace → index in spaces
	appsOf  map[string][]int // namespace → indexes in apps
}

// merge adds the nodes' pod figures and the pod facts to the monotonic
// totals and builds the new snapshot.
func (a *Aggregator) merge(pods []source.Pod, podIndex map[podKey]*source.Pod,
	now time.Time) *snapshot {
	if a.forgetNS.Swap(false) {
		clear(a.projects)
	}
	prows := make(map[podKey]*row)

	// Usage from the nodes.
	for _, n := range a.nodes {
		for k := range n.out {
			u := &n.out[k]
			ps := a.podState(u.ns, u.pod, podIndex, now)
			if ps == nil {
				continue
			}
			a.addCounters(ps, u)
			r := podRow(prows, ps)
			r.ws += u.ws
			r.rss += u.rss
			r.fs += u.fs
			r.measured = 1
			if u.src != "" {
				r.sources[slices.Index(sources, u.src)] = 1
			}
		}
	}

	// Pod facts: phases, restarts, requests and limits.
	for k := range pods {
		p := &pods[k]
		ps := a.podState(p.Namespace, p.Name, podIndex, now)
		if ps == nil {
			continue
		}
		a.addRestarts(ps, p, now)
		r := podRow(prows, ps)
		if i := slices.Index(phases, p.Phase); i >= 0 {
			r.phases[i] = 1
		}
		r.cpuReq, r.cpuLim = p.CPURequestCores, p.CPULimitCores
		r.memReq, r.memLim = p.MemoryRequestBytes, p.MemoryLimitBytes
	}
	a.forgetPods(now)
	return a.build(prows, now)
}

// podState returns the pod's state, or nil if its namespace is no tenant.
func (a *Aggregator) podState(ns, pod string, idx map[podKey]*source.Pod,
	now time.Time) *podState {
	project, ok := a.project(ns)
	if !ok {
		return nil
	}
	k := podKey{ns, pod}
	ps := a.pods[k]
	if ps == nil {
		ps = &podState{ns: ns, pod: pod, project: project}
		a.pods[k] = ps
	}
	if p := idx[k]; p != nil {
		ps.app = p.App
	}
	ps.project, ps.seen = project, now
	return ps
}

// addCounters adds a pod's increases to the pod, its app and namespace.
func (a *Aggregator) addCounters(ps *podState, u *podUsage) {
	ps.add(u)
	a.space(ps.ns).add(u)
	a.app(ps.ns, ps.app).add(u)
}

// addRestarts follows a pod's restart count with the counter rules.
func (a *Aggregator) addRestarts(ps *podState, p *source.Pod, now time.Time) {
	key := p.UID
	if key == "" {
		key = p.Namespace + "/" + p.Name
	}
	t := a.restarts[key]
	v := float64(p.Restarts)
	d := v
	if t == nil {
		t = &restartTrack{}
		a.restarts[key] = t
	} else if v >= t.last {
		d = v - t.last
	}
	t.last, t.seen = v, now
	ps.restarts += d
	a.space(ps.ns).restarts += d
	a.app(ps.ns, ps.app).restarts += d
}

func (a *Aggregator) space(ns string) *counters {
	c := a.spaces[ns]
	if c == nil {
		c = &counters{}
		a.spaces[ns] = c
	}
	return c
}

func (a *Aggregator) app(ns, app string) *counters {
	c := a.apps[appKey{ns, app}]
	if c == nil {
		c = &counters{}
		a.apps[appKey{ns, app}] = c
	}
	return c
}

// forgetPods drops pods and restart tracks unseen for ForgetAfter; their
// increases stay in their namespace and app.
func (a *Aggregator) forgetPods(now time.Time) {
	for k, ps := range a.pods {
		if now.Sub(ps.seen) > a.opts.ForgetAfter {
			delete(a.pods, k)
		}
	}
	for k, t := range a.restarts {
		if now.Sub(t.seen) > a.opts.ForgetAfter {
			delete(a.restarts, k)
		}
	}
}

func podRow(rows map[podKey]*row, ps *podState) *row {
	k := podKey{ps.ns, ps.pod}
	r := rows[k]
	if r == nil {
		r = &row{ns: ps.ns, project: ps.project, app: ps.app, pod: ps.pod}
		rows[k] = r
	}
	return r
}

// build assembles the snapshot: pods seen in this cycle, every app and
// namespace ever seen (their counters never go away), and target health.
func (a *Aggregator) build(prows map[podKey]*row, now time.Time) *snapshot {
	s := &snapshot{at: now, byNS: make(map[string]int), appsOf: make(map[string][]int)}
	spaces := make(map[string]*row, len(a.spaces))
	apps := make(map[appKey]*row, len(a.apps))
	for ns, c := range a.spaces {
		project, ok := a.project(ns)
		if ok {
			spaces[ns] = &row{ns: ns, project: project, figures: figures{counters: *c}}
		}
	}
	for k, c := range a.apps {
		if r := spaces[k.ns]; r != nil {
			apps[k] = &row{ns: k.ns, project: r.project, app: k.app, figures: figures{counters: *c}}
		}
	}

	for _, k := range slices.SortedFunc(maps.Keys(prows), comparePods) {
		p := prows[k]
		p.counters = a.pods[k].counters
		s.pods = append(s.pods, *p)
		for _, r := range []*row{spaces[p.ns], apps[appKey{p.ns, p.app}]} {
			if r != nil {
				r.sumGauges(&p.figures)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(spaces)) {
		s.byNS[k] = len(s.spaces)
		s.spaces = append(s.spaces, *spaces[k])
	}
	for _, k := range slices.SortedFunc(maps.Keys(apps), compareApps) {
		s.appsOf[k.ns] = append(s.appsOf[k.ns], len(s.apps))
		s.apps = append(s.apps, *apps[k])
	}
	a.rates(s)
	s.targets, s.nodes = a.targetRows(now)
	return s
}

// sumGauges adds a pod's gauges, phase and source to a namespace or app.
func (r *row) sumGauges(p *figures) {
	r.measured += p.measured
	r.ws += p.ws
	r.rss += p.rss
	r.fs += p.fs
	r.cpuReq += p.cpuReq
	r.cpuLim += p.cpuLim
	r.memReq += p.memReq
	r.memLim += p.memLim
	for i := range r.phases {
		r.phases[i] += p.phases[i]
	}
	for i := range r.sources {
		r.sources[i] += p.sources[i]
	}
}

// rates sets per-second figures from the previous snapshot's counters.
func (a *Aggregator) rates(s *snapshot) {
	prev := a.last.Load()
	if prev == nil || prev.at.IsZero() {
		return
	}
	dt := s.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return
	}
	rate := func(cur *figures, old *figures) {
		cur.cpuCores = max(0, cur.cpu-old.cpu) / dt
		cur.rxRate = max(0, cur.rx-old.rx) / dt
		cur.txRate = max(0, cur.tx-old.tx) / dt
	}
	for i := range s.spaces {
		if j, ok := prev.byNS[s.spaces[i].ns]; ok {
			rate(&s.spaces[i].figures, &prev.spaces[j].figures)
		}
	}
	for ns, idx := range s.appsOf {
		for _, i := range idx {
			for _, j := range prev.appsOf[ns] {
				if prev.apps[j].app == s.apps[i].app {
					rate(&s.apps[i].figures, &prev.apps[j].figures)
				}
			}
		}
	}
}

// targetRows lists every endpoint's health and each node's usage.
func (a *Aggregator) targetRows(now time.Time) ([]targetRow, []tenancy.NodeUsage) {
	var rows []targetRow
	var nodes []tenancy.NodeUsage
	for _, name := range slices.Sorted(maps.Keys(a.nodes)) {
		n := a.nodes[name]
		nu := tenancy.NodeUsage{Node: name, Endpoints: make(map[string]bool), ObservedAt: now}
		for _, kind := range slices.Sorted(maps.Keys(n.targets)) {
			t := n.targets[kind]
			rows = append(rows, targetRow{
				node: name, endpoint: string(kind), up: t.up,
				duration: t.duration.Seconds(), samples: float64(t.samples),
				errors: maps.Clone(t.errors), dropped: maps.Clone(t.dropped),
			})
			nu.Endpoints[string(kind)] = t.up
			nu.Up = nu.Up || t.up
		}
		for _, u := range n.out {
			nu.Total.MemoryWorkingSetBytes += u.ws
			nu.Total.MemoryRSSBytes += u.rss
			nu.Total.FilesystemUsageBytes += u.fs
		}
		nodes = append(nodes, nu)
	}
	return rows, nodes
}

func comparePods(x, y podKey) int {
	if x.ns != y.ns {
		return cmpString(x.ns, y.ns)
	}
	return cmpString(x.pod, y.pod)
}

func compareApps(x, y appKey) int {
	if x.ns != y.ns {
		return cmpString(x.ns, y.ns)
	}
	return cmpString(x.app, y.app)
}

func cmpString(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// NamespaceUsage returns the latest figures of one namespace, in all and
// per app, and false if the collector has seen nothing of it.
func (a *Aggregator) NamespaceUsage(ns string) (tenancy.NamespaceUsage, bool) {
	s := a.last.Load()
	i, ok := s.byNS[ns]
	if !ok {
		return tenancy.NamespaceUsage{}, false
	}
	return s.usage(i), true
}

// ClusterUsage returns the latest figures of every namespace and node.
func (a *Aggregator) ClusterUsage() tenancy.ClusterUsage {
	s := a.last.Load()
	cu := tenancy.ClusterUsage{ObservedAt: s.at, Nodes: slices.Clone(s.nodes)}
	for i := range s.spaces {
		cu.Namespaces = append(cu.Namespaces, s.usage(i))
	}
	return cu
}

func (s *snapshot) usage(i int) tenancy.NamespaceUsage {
	r := &s.spaces[i]
	nu := tenancy.NamespaceUsage{Namespace: r.ns, ObservedAt: s.at,
		Total: r.resources(), Apps: make(map[string]tenancy.Resources)}
	for _, j := range s.appsOf[r.ns] {
		nu.Apps[s.apps[j].app] = s.apps[j].resources()
	}
	return nu
}

func (f *figures) resources() tenancy.Resources {
	r := tenancy.Resources{
		CPUCores: f.cpuCores, CPUSecondsTotal: f.cpu,
		MemoryWorkingSetBytes: f.ws, MemoryRSSBytes: f.rss,
		NetworkReceiveBytesTotal: f.rx, NetworkTransmitBytesTotal: f.tx,
		NetworkReceiveBytesPerSecond: f.rxRate, NetworkTransmitBytesPerSecond: f.txRate,
		FilesystemUsageBytes: f.fs, PodsByPhase: make(map[string]int),
		ContainerRestartsTotal: f.restarts, OOMEventsTotal: f.oom,
		CPURequestsCores: f.cpuReq, CPULimitsCores: f.cpuLim,
		MemoryRequestsBytes: f.memReq, MemoryLimitsBytes: f.memLim,
	}
	for i, p := range phases {
		r.PodsByPhase[p] = f.phases[i]
	}
	return r
}
