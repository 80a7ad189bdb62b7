package aggregate

import (
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/internal/testenv"
)

var cadvisorFixtures = []string{
	"kubelet-1.18-minikube-docker-systemd-cgroupv1.metrics-cadvisor.txt",
	"kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt",
	"kubelet-1.22-minikube-containerd-cgroupv2.metrics-cadvisor.txt",
	"kubelet-1.35-minikube-containerd2-cgroupv2-psi.metrics-cadvisor.txt",
	"kubelet-post1.16-kind-containerd.metrics-cadvisor.txt",
}

// mixin computes per namespace what the kubernetes-mixin rules give from
// one scrape, read with Prometheus' own parser:
//
//	sum by (namespace) (max by (namespace,pod,container) (
//	  container_memory_working_set_bytes{container!="",image!=""}))
//
// and the same for RSS and CPU seconds; network is the sum of every
// namespaced series. Where Canopy is deliberately more exact, the reference
// applies the same rule: Docker's container="POD" sandbox is not counted,
// the container instance with the newest start time stands for its
// container (the mixin's max would take the largest of several), and a
// sample more than two minutes older than the scrape's newest is stale, and
// a pod without any container series is counted from its pod cgroup.
func mixin(t *testing.T, body []byte) map[string]map[string]float64 {
	t.Helper()
	type series struct {
		name, ns, pod, container, image, id string
		v                                   float64
		ts                                  int64
	}
	var all []series
	var newestTs int64
	p := textparse.NewPromParser(body, labels.NewSymbolTable(), false)
	for {
		e, err := p.Next()
		if err != nil {
			break
		}
		if e != textparse.EntrySeries {
			continue
		}
		var l labels.Labels
		p.Labels(&l)
		_, ts, v := p.Series()
		s := series{l.Get("__name__"), l.Get("namespace"), l.Get("pod"), l.Get("container"),
			l.Get("image"), l.Get("id"), v, 0}
		if ts != nil {
			s.ts = *ts
			newestTs = max(newestTs, s.ts)
		}
		all = append(all, s)
	}

	start := map[string]float64{} // by id
	for _, s := range all {
		if s.name == "container_start_time_seconds" {
			start[s.id] = s.v
		}
	}
	type ctr struct{ ns, pod, container string }
	current := map[ctr]string{} // the newest instance's id
	for _, s := range all {
		if s.name != "container_start_time_seconds" || s.container == "" || s.image == "" ||
			s.container == "POD" || s.ns == "" {
			continue
		}
		k := ctr{s.ns, s.pod, s.container}
		if cur, ok := current[k]; !ok || start[s.id] > start[cur] {
			current[k] = s.id
		}
	}

	// Pods without application containers fall back to their pod cgroup
	// (container="" and no image).
	type podRef struct{ ns, pod string }
	hasApp := map[podRef]bool{}
	for k := range current {
		hasApp[podRef{k.ns, k.pod}] = true
	}
	for _, s := range all {
		if s.name == "container_start_time_seconds" && s.container == "" && s.image == "" &&
			s.pod != "" && !hasApp[podRef{s.ns, s.pod}] {
			current[ctr{s.ns, s.pod, ""}] = s.id
		}
	}

	out := map[string]map[string]float64{}
	add := func(what, ns string, v float64) {
		if out[what] == nil {
			out[what] = map[string]float64{}
		}
		out[what][ns] += v
	}
	stale := newestTs - (2 * time.Minute).Milliseconds()
	for _, s := range all {
		if s.ts != 0 && s.ts < stale || s.ns == "" {
			continue
		}
		switch s.name {
		case "container_network_receive_bytes_total":
			add("rx", s.ns, s.v)
		case "container_network_transmit_bytes_total":
			add("tx", s.ns, s.v)
		}
		if current[ctr{s.ns, s.pod, s.container}] != s.id {
			continue
		}
		switch s.name {
		case "container_memory_working_set_bytes":
			add("ws", s.ns, s.v)
		case "container_memory_rss":
			add("rss", s.ns, s.v)
		case "container_cpu_usage_seconds_total":
			add("cpu", s.ns, s.v)
		}
	}
	return out
}

// TestFixturesAgainstMixin: on every real cAdvisor capture, the per-namespace
// working set, RSS, CPU seconds and network bytes equal the reference
// computation above. No pod facts are given, so no pod is known to use the
// host network, as for Prometheus.
func TestFixturesAgainstMixin(t *testing.T) {
	for _, name := range cadvisorFixtures {
		t.Run(name, func(t *testing.T) {
			body := testenv.Fixture(t, name)
			want := mixin(t, body)
			if len(want["ws"]) == 0 {
				t.Fatal("the reference found no namespace")
			}
			a := newTest(&clock{t0})
			a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, string(body))}, nil)
			families := map[string]string{
				"ws": "memory_working_set_bytes", "rss": "memory_rss_bytes",
				"cpu": "cpu_usage_seconds_total", "rx": "network_receive_bytes_total",
				"tx": "network_transmit_bytes_total",
			}
			for what, family := range families {
				for ns, v := range want[what] {
					check(t, ns+" "+family, nsValue(t, a, family, ns), v)
				}
			}
		})
	}
}

// TestChurn deletes pods and restarts containers between cycles and checks
// every counter against totals worked out by hand.
func TestChurn(t *testing.T) {
	c := &clock{t0}
	a := newTest(c)
	pod := func(name, uid string, restarts int64) source.Pod {
		return source.Pod{Namespace: "t", Name: name, UID: uid, App: "web", Phase: "Running",
			Restarts: restarts}
	}
	cycles := []struct {
		body string
		pods []source.Pod
	}{
		// 1: two pods. cpu 10+20, rx 100+200, restarts 0+1.
		{cad("t", "a", "c", "i", "/a1", 100, 10, 1, 1) + netSeries("t", "a", "POD", "p", "/as", "eth0", 100, 0) +
			cad("t", "b", "c", "i", "/b1", 100, 20, 1, 1) + netSeries("t", "b", "POD", "p", "/bs", "eth0", 200, 0),
			[]source.Pod{pod("a", "ua", 0), pod("b", "ub", 1)}},
		// 2: a's container restarts (new id, cpu 3); b grows to 25, rx 250;
		// restarts of a go to 1. cpu +3 +5, rx +0 +50, restarts +1.
		{cad("t", "a", "c", "i", "/a2", 200, 3, 1, 1) + netSeries("t", "a", "POD", "p", "/as", "eth0", 100, 0) +
			cad("t", "b", "c", "i", "/b1", 100, 25, 1, 1) + netSeries("t", "b", "POD", "p", "/bs", "eth0", 250, 0),
			[]source.Pod{pod("a", "ua", 1), pod("b", "ub", 1)}},
		// 3: b is deleted; a new pod b (new uid, same name) starts with cpu 2,
		// rx 5, 0 restarts. cpu +2 (a unchanged), rx +5, restarts +0.
		{cad("t", "a", "c", "i", "/a2", 200, 3, 1, 1) + netSeries("t", "a", "POD", "p", "/as", "eth0", 100, 0) +
			cad("t", "b", "c", "i", "/b2", 300, 2, 1, 1) + netSeries("t", "b", "POD", "p", "/bs2", "eth0", 5, 0),
			[]source.Pod{pod("a", "ua", 1), pod("b", "ub2", 0)}},
		// 4: every pod is gone: nothing more is added.
		{cad("u", "x", "c", "i", "/x", 1, 1, 1, 1), nil},
	}
	for _, cy := range cycles {
		c.now = c.now.Add(15 * time.Second)
		a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, cy.body)}, cy.pods)
	}
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10+20+3+5+2)
	check(t, "rx", nsValue(t, a, "network_receive_bytes_total", "t"), 100+200+50+5)
	check(t, "restarts", nsValue(t, a, "container_restarts_total", "t"), 1+1)
	check(t, "app cpu", value(t, a, "canopy_app_cpu_usage_seconds_total",
		map[string]string{"namespace": "t", "app": "web"}), 40)
	u, ok := a.NamespaceUsage("t")
	if !ok || u.Total.CPUSecondsTotal != 40 || u.Apps["web"].ContainerRestartsTotal != 2 {
		t.Errorf("usage = %+v, want 40 CPU seconds and 2 restarts for app web", u)
	}
}

// BenchmarkCycle parses and aggregates the largest capture, as one node's
// cycle, in steady state.
func BenchmarkCycle(b *testing.B) {
	body := testenv.Fixture(b, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
	c := &clock{t0}
	a := newTest(c)
	payloads := []source.Payload{{Target: source.Target{Node: "n1", Kind: source.KubeletCadvisor},
		Body: body, ContentType: "text/plain; version=0.0.4"}}
	st := a.Cycle(payloads, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c.now = c.now.Add(15 * time.Second)
		a.Cycle(payloads, nil)
	}
	b.ReportMetric(float64(st.Samples), "samples/op")
}
