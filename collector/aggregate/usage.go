package aggregate

import (
	"time"

	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"canopy.dev/canopy/collector/parse"
	"canopy.dev/canopy/collector/source"
)

// usage computes one pod's figures and counter increases from its cgroups.
func (n *node) usage(a *podAcc, cad *scrape, pods map[podKey]*source.Pod, now time.Time) podUsage {
	u := podUsage{ns: a.ns, pod: a.pod}
	switch {
	case len(a.apps) > 0:
		u.src = SourceCadvisor
		for _, i := range a.apps {
			n.addInstance(&u, i, a, cad.fresh, now)
		}
	case a.cgroup != nil && a.cgroup.hasUsage():
		u.src = SourcePodCgroup
		n.addInstance(&u, a.cgroup, a, cad.fresh, now)
	case len(a.resApps) > 0 || a.resPod != nil:
		u.src = SourceResource
		res := n.scrapes[source.KubeletResource]
		if len(a.resApps) == 0 {
			n.addInstance(&u, a.resPod, a, res.fresh, now)
		}
		for _, i := range a.resApps {
			n.addInstance(&u, i, a, res.fresh, now)
		}
	case a.sum != nil:
		u.src = SourceSummary
		n.addSummary(&u, a.sum, n.scrapes[source.KubeletSummary].fresh, now)
	}

	// Network belongs to the pod; a host-network pod reports the node's.
	if p := pods[podKey{a.ns, a.pod}]; p != nil && p.HostNetwork {
		return u
	}
	switch {
	case a.net != nil:
		n.addNetwork(&u, a, a.net.id, a.net.startTime(), a.net.nets, cad.fresh, now)
	case a.sum != nil && a.sum.Network != nil:
		nets := summaryNets(parse.Interfaces(a.sum.Network))
		fresh := n.scrapes[source.KubeletSummary].fresh
		n.addNetwork(&u, a, "", float64(a.sum.StartTime.Unix()), nets, fresh, now)
	}
	return u
}

// hasUsage reports whether a cgroup has any CPU or memory figure.
func (i *instance) hasUsage() bool {
	_, ok := i.cpu()
	return ok || i.has[parse.MemoryWorkingSet] || i.has[parse.MemoryRSS]
}

// addInstance adds one container's gauges to u and, when its data is fresh,
// its counter increases.
func (n *node) addInstance(u *podUsage, i *instance, a *podAcc, fresh bool, now time.Time) {
	if i.has[parse.MemoryWorkingSet] || i.has[parse.MemoryRSS] || i.has[parse.FilesystemUsage] {
		u.hasUsage = true
	}
	u.ws += i.val[parse.MemoryWorkingSet]
	u.rss += i.val[parse.MemoryRSS]
	u.fs += i.val[parse.FilesystemUsage]
	cpu, hasCPU := i.cpu()
	u.hasUsage = u.hasUsage || hasCPU
	if !fresh {
		return
	}

	t := n.track(i.ns, i.pod, i.container, now)
	moved := t.hasCPU && changed(t, i.id, i.startTime())
	if moved {
		// The old instance may still be reported: its last increase counts.
		if old := n.sibling(a, i.container, t.id); old != nil {
			if v, ok := old.cpu(); ok && v >= t.cpu {
				u.cpu += v - t.cpu
			}
			if v := old.val[parse.OOMEvents]; old.has[parse.OOMEvents] && v >= t.oom {
				u.oom += v - t.oom
			}
		}
	}
	t.id, t.start = i.id, i.startTime()
	if hasCPU {
		u.cpu += increase(&t.cpu, &t.hasCPU, cpu, moved)
	}
	if i.has[parse.OOMEvents] {
		u.oom += increase(&t.oom, &t.hasOOM, i.val[parse.OOMEvents], moved)
	}
}

// changed reports whether a container's instance differs from the one its
// track followed; an unknown id or start time on either side is no change.
func changed(t *track, id string, start float64) bool {
	return id != "" && t.id != "" && id != t.id ||
		start != 0 && t.start != 0 && start != t.start
}

// sibling returns the pod's other instance of a container with the given id.
func (n *node) sibling(a *podAcc, container, id string) *instance {
	for _, i := range a.old {
		if i.container == container && i.id == id {
			return i
		}
	}
	return nil
}

// track returns the counter state of one container, or of a pod's network
// when container is "\x00net".
func (n *node) track(ns, pod, container string, now time.Time) *track {
	k := append(n.key[:0], ns...)
	k = append(k, 0)
	k = append(k, pod...)
	k = append(k, 0)
	k = append(k, container...)
	n.key = k
	t, ok := n.tracks[string(k)]
	if !ok {
		t = &track{}
		n.tracks[string(k)] = t
	}
	t.seen = now
	return t
}

const netTrack = "\x00net"

// addNetwork adds a pod's interface counters' increases to u.
func (n *node) addNetwork(u *podUsage, a *podAcc, id string, start float64, nets []ifaceSample,
	fresh bool, now time.Time) {
	if !fresh {
		return
	}
	t := n.track(a.ns, a.pod, netTrack, now)
	moved := len(t.nets) > 0 && changed(t, id, start)
	t.id, t.start = id, start
	for _, f := range nets {
		it := t.iface(f.name)
		if f.hasRx {
			u.rx += increase(&it.rx, &it.hasRx, f.rx, moved)
		}
		if f.hasTx {
			u.tx += increase(&it.tx, &it.hasTx, f.tx, moved)
		}
	}
}

// iface returns the track of one interface, adding it on first sight.
func (t *track) iface(name string) *ifaceTrack {
	for k := range t.nets {
		if t.nets[k].name == name {
			return &t.nets[k]
		}
	}
	t.nets = append(t.nets, ifaceTrack{name: name})
	return &t.nets[len(t.nets)-1]
}

// addSummary adds a /stats/summary pod's container figures to u.
func (n *node) addSummary(u *podUsage, ps *stats.PodStats, fresh bool, now time.Time) {
	for k := range ps.Containers {
		c := &ps.Containers[k]
		i := instance{ns: ps.PodRef.Namespace, pod: ps.PodRef.Name, container: c.Name}
		if !c.StartTime.IsZero() {
			i.val[parse.StartTime], i.has[parse.StartTime] = float64(c.StartTime.Unix()), true
		}
		if c.CPU != nil && c.CPU.UsageCoreNanoSeconds != nil {
			i.val[parse.CPUUsage] = float64(*c.CPU.UsageCoreNanoSeconds) / 1e9
			i.has[parse.CPUUsage] = true
		}
		if m := c.Memory; m != nil {
			setU64(&i, parse.MemoryWorkingSet, m.WorkingSetBytes)
			setU64(&i, parse.MemoryRSS, m.RSSBytes)
		}
		if c.Rootfs != nil {
			setU64(&i, parse.FilesystemUsage, c.Rootfs.UsedBytes)
		}
		n.addInstance(u, &i, &podAcc{}, fresh, now)
	}
}

func setU64(i *instance, f parse.Family, v *uint64) {
	if v != nil {
		i.val[f], i.has[f] = float64(*v), true
	}
}

// summaryNets converts /stats/summary interfaces to samples.
func summaryNets(in []stats.InterfaceStats) []ifaceSample {
	out := make([]ifaceSample, 0, len(in))
	for _, f := range in {
		s := ifaceSample{name: f.Name}
		if f.RxBytes != nil {
			s.rx, s.hasRx = float64(*f.RxBytes), true
		}
		if f.TxBytes != nil {
			s.tx, s.hasTx = float64(*f.TxBytes), true
		}
		out = append(out, s)
	}
	return out
}

// forget drops counter state not seen for forgetAt.
func (n *node) forget(now time.Time) {
	for k, t := range n.tracks {
		if now.Sub(t.seen) > n.forgetAt {
			delete(n.tracks, k)
		}
	}
}
