package aggregate

import (
	"fmt"
	"io"
	"sync"
	"time"

	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"canopy.dev/canopy/collector/parse"
	"canopy.dev/canopy/collector/source"
)

// Source names where a pod's CPU and memory came from, as exposed in
// canopy_namespace_pods_usage_source{source}.
const (
	SourceCadvisor  = "cadvisor"   // application containers of /metrics/cadvisor
	SourcePodCgroup = "pod_cgroup" // the pod cgroup, no container series at all
	SourceResource  = "resource"   // /metrics/resource, cAdvisor data absent
	SourceSummary   = "summary"    // /stats/summary, neither of the above
)

// node holds what Canopy keeps of one node between cycles. Add reads one of
// its payloads at a time, under mu; EndCycle alone touches it otherwise.
type node struct {
	mu         sync.Mutex // held while one of the node's payloads is read
	name       string
	staleAfter time.Duration
	keepFor    time.Duration // a failed endpoint's last good data is used this long
	forgetAt   time.Duration // counter state unseen this long is forgotten

	scanner parse.Scanner
	key     []byte
	scrapes map[source.Kind]*scrape
	targets map[source.Kind]*target
	tracks  map[string]*track
	pods    map[string]*podAcc
	podGen  uint64
	out     []podUsage
	lastAt  time.Time // last cycle with a payload for the node

	// State of the payload being ingested.
	curScrape        *scrape
	curKind          source.Kind
	scrapeErr        bool
	machineErr       bool
	maxTs            int64
	containerSamples int
	logErr           error
}

// podAcc gathers one pod's cgroups across the node's endpoints.
type podAcc struct {
	ns, pod string
	gen     uint64
	apps    []*instance // current instance of each application container
	old     []*instance // older instances of the same containers
	cgroup  *instance
	net     *instance
	resApps []*instance
	resPod  *instance
	sum     *stats.PodStats
}

// podUsage is one pod's figures from one node in one cycle. The counter
// fields are increases in this cycle, already following the counter rules.
type podUsage struct {
	ns, pod  string
	src      string
	ws, rss  float64
	fs       float64
	hasUsage bool
	cpu, oom float64
	rx, tx   float64
}

// track is the counter state of one container (or of one pod's network)
// across cycles.
type track struct {
	id       string
	start    float64
	cpu, oom float64
	hasCPU   bool
	hasOOM   bool
	nets     []ifaceTrack
	seen     time.Time
}

type ifaceTrack struct {
	name         string
	rx, tx       float64
	hasRx, hasTx bool
}

// increase applies the counter rules to one value: the first sight and a
// reset count the whole value, then only increases count.
func increase(last *float64, has *bool, v float64, reset bool) float64 {
	d := v - *last
	if !*has || reset || v < *last {
		d = v
	}
	*last, *has = v, true
	return d
}

func newNode(name string, o *Options) *node {
	return &node{
		name: name, staleAfter: o.StaleAfter, keepFor: 2 * o.Interval, forgetAt: o.ForgetAfter,
		scrapes: make(map[source.Kind]*scrape), targets: make(map[source.Kind]*target),
		tracks: make(map[string]*track), pods: make(map[string]*podAcc),
	}
}

// begin prepares the node for its first payload of a cycle.
func (n *node) begin(now time.Time) {
	n.lastAt = now
	for _, sc := range n.scrapes {
		sc.fresh = false
	}
}

// processPayload updates the endpoint's health and, for a good answer, its
// data, read from body when it is not nil. It reports whether the endpoint
// is up, and the error that ended the reading of body.
func (n *node) processPayload(p *source.Payload, body io.Reader, now time.Time) (bool, error) {
	kind := p.Target.Kind
	t := n.targets[kind]
	if t == nil {
		t = &target{node: n.name, kind: kind}
		n.targets[kind] = t
	}
	t.seen, t.duration, t.samples, n.logErr = true, p.Duration, 0, nil
	sc := n.scrapes[kind]
	if sc == nil {
		sc = &scrape{kind: kind, inst: make(map[string]*instance)}
		n.scrapes[kind] = sc
	}

	reason := ""
	var readErr error
	if p.Err != nil {
		reason, n.logErr = failureReason(p), p.Err
	} else {
		reason, readErr = n.ingest(sc, p, body, t)
	}
	if reason != "" {
		t.up = false
		t.countError(reason)
		t.lastErr = n.logErr
		if t.lastErr == nil {
			t.lastErr = fmt.Errorf("scrape failed: %s", reason)
		}
		if p.Err == nil {
			// The body was read over the last good data: none of it is trusted.
			sc.okAt = time.Time{}
		}
		return false, readErr
	}
	t.up, sc.okAt, sc.fresh = true, now, true
	return true, nil
}

// valid returns the endpoint's data if it is fresh or recent enough.
func (n *node) valid(kind source.Kind, now time.Time) *scrape {
	sc := n.scrapes[kind]
	if sc == nil || sc.okAt.IsZero() || now.Sub(sc.okAt) > n.keepFor {
		return nil
	}
	return sc
}

// acc returns the pod's accumulator for this cycle.
func (n *node) acc(ns, pod string) *podAcc {
	k := append(n.key[:0], ns...)
	k = append(k, 0)
	k = append(k, pod...)
	n.key = k
	a, ok := n.pods[string(k)]
	if !ok {
		a = &podAcc{ns: ns, pod: pod}
		n.pods[string(k)] = a
	}
	if a.gen != n.podGen {
		*a = podAcc{ns: a.ns, pod: a.pod, gen: n.podGen,
			apps: a.apps[:0], old: a.old[:0], resApps: a.resApps[:0]}
	}
	return a
}

// assemble applies the rules to the node's valid data: per pod, CPU and
// memory come from cAdvisor's application containers, else its pod cgroup,
// else /metrics/resource, else /stats/summary; network from cAdvisor, else
// /stats/summary. One source per pod, so no usage is added twice.
func (n *node) assemble(pods map[podKey]*source.Pod, now time.Time) {
	n.podGen++
	cad := n.valid(source.KubeletCadvisor, now)
	if cad == nil {
		cad = n.valid(source.Cadvisor, now)
	}
	if cad != nil {
		for _, i := range cad.inst {
			n.addCadvisor(i, cad.kind)
		}
	}
	if res := n.valid(source.KubeletResource, now); res != nil {
		for _, i := range res.inst {
			n.addResource(i)
		}
	}
	if sum := n.valid(source.KubeletSummary, now); sum != nil && sum.sum != nil {
		for k := range sum.sum.Pods {
			ps := &sum.sum.Pods[k]
			n.acc(ps.PodRef.Namespace, ps.PodRef.Name).sum = ps
		}
	}

	n.out = n.out[:0]
	for k, a := range n.pods {
		if a.gen != n.podGen {
			delete(n.pods, k)
			continue
		}
		n.out = append(n.out, n.usage(a, cad, pods, now))
	}
}

// addCadvisor files one cAdvisor cgroup under its pod.
func (n *node) addCadvisor(i *instance, kind source.Kind) {
	r := roleOf(i, kind)
	if r == roleOther {
		return
	}
	a := n.acc(i.ns, i.pod)
	if len(i.nets) > 0 && (a.net == nil || newest(i, a.net)) {
		a.net = i
	}
	switch r {
	case roleApp:
		for k, cur := range a.apps {
			if cur.container != i.container {
				continue
			}
			if newest(i, cur) {
				a.apps[k], i = i, cur
			}
			a.old = append(a.old, i)
			return
		}
		a.apps = append(a.apps, i)
	case rolePodCgroup:
		if a.cgroup == nil || newest(i, a.cgroup) {
			a.cgroup = i
		}
	}
}

// addResource files one /metrics/resource series set under its pod.
func (n *node) addResource(i *instance) {
	a := n.acc(i.ns, i.pod)
	switch roleOf(i, source.KubeletResource) {
	case roleApp:
		a.resApps = append(a.resApps, i)
	case rolePodCgroup:
		a.resPod = i
	}
}
