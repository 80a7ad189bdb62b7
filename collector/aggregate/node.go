package aggregate

import (
	"time"

	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"canopy.dev/canopy/collector/parse"
	"canopy.dev/canopy/collector/source"
)

// instance is one cgroup (one container instance, a sandbox or a pod
// cgroup) as one endpoint of one node reported it in its latest good scrape.
type instance struct {
	ns, pod, container, id, image string
	sandbox                       bool
	gen                           uint64 // the scrape that last reported it

	val [parse.NumFamilies]float64
	ts  [parse.NumFamilies]int64 // 0: the sample had no timestamp
	has [parse.NumFamilies]bool

	perCPU   float64 // sum of cpu="cpuNN" series, for kubelets without a total
	perCPUTs int64
	hasPer   bool

	nets []ifaceSample
}

// ifaceSample is one interface's counters of one instance.
type ifaceSample struct {
	name         string
	rx, tx       float64
	rxTs, txTs   int64
	hasRx, hasTx bool
}

// reset clears what an earlier scrape left in i.
func (i *instance) reset(gen uint64) {
	i.gen = gen
	i.has = [parse.NumFamilies]bool{}
	i.val = [parse.NumFamilies]float64{}
	i.ts = [parse.NumFamilies]int64{}
	i.perCPU, i.perCPUTs, i.hasPer = 0, 0, false
	i.nets = i.nets[:0]
}

// startTime returns the instance's start time in seconds, 0 if unknown.
func (i *instance) startTime() float64 {
	if i.has[parse.StartTime] {
		return i.val[parse.StartTime]
	}
	return 0
}

// cpu returns the instance's CPU seconds: the total series, else the sum of
// the per-CPU series.
func (i *instance) cpu() (float64, bool) {
	if i.has[parse.CPUUsage] {
		return i.val[parse.CPUUsage], true
	}
	return i.perCPU, i.hasPer
}

// newest reports whether a is a newer instance than b: a later start time,
// else later samples, else the greater id (so the choice is stable).
func newest(a, b *instance) bool {
	if sa, sb := a.startTime(), b.startTime(); sa != sb {
		return sa > sb
	}
	if ta, tb := a.maxTs(), b.maxTs(); ta != tb {
		return ta > tb
	}
	return a.id > b.id
}

func (i *instance) maxTs() int64 {
	var m int64
	for _, t := range i.ts {
		m = max(m, t)
	}
	return m
}

// scrape is the parsed data of one endpoint of one node.
type scrape struct {
	kind             source.Kind
	gen              uint64 // bumped on every good scrape
	okAt             time.Time
	fresh            bool // parsed in the current cycle
	inst             map[string]*instance
	sum              *stats.Summary
	nodeCPU, nodeMem float64 // node_* of /metrics/resource
}

// role is what a cgroup is to the aggregation rules.
type role uint8

const (
	roleOther     role = iota // node or system cgroup: never counted
	roleApp                   // an application container
	roleSandbox               // a pod sandbox (pause): only its network counts
	rolePodCgroup             // the pod-level cgroup: a fallback only
)

// roleOf classifies an instance of a scrape of the given kind.
func roleOf(i *instance, kind source.Kind) role {
	switch {
	case i.ns == "" || i.pod == "":
		return roleOther
	case i.sandbox || i.container == "POD":
		return roleSandbox
	case kind == source.KubeletResource && i.container != "":
		return roleApp // /metrics/resource has no image label
	case i.container != "" && i.image != "":
		return roleApp
	case i.container == "" && i.image != "":
		return roleSandbox // containerd's pause container
	case i.container == "":
		return rolePodCgroup
	}
	return roleOther // a named container without image: not a container cgroup
}
