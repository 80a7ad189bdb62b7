package aggregate

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/collector/source"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// clock is the tests' injected time.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTest(c *clock) *Aggregator {
	return New(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: c.Now})
}

func payload(node string, kind source.Kind, body string) source.Payload {
	return source.Payload{Target: source.Target{Node: node, Kind: kind}, Body: []byte(body),
		ContentType: "text/plain; version=0.0.4"}
}

// cad writes one cAdvisor container's series.
func cad(ns, pod, container, image, id string, start, cpu, ws, rss float64) string {
	l := fmt.Sprintf(`container=%q,id=%q,image=%q,namespace=%q,pod=%q`, container, id, image, ns, pod)
	return fmt.Sprintf("container_start_time_seconds{%s} %g\n"+
		"container_cpu_usage_seconds_total{%s,cpu=\"total\"} %g\n"+
		"container_memory_working_set_bytes{%s} %g\ncontainer_memory_rss{%s} %g\n",
		l, start, l, cpu, l, ws, l, rss)
}

func netSeries(ns, pod, container, image, id, iface string, rx, tx float64) string {
	l := fmt.Sprintf(`container=%q,id=%q,image=%q,interface=%q,namespace=%q,pod=%q`,
		container, id, image, iface, ns, pod)
	return fmt.Sprintf("container_network_receive_bytes_total{%s} %g\n"+
		"container_network_transmit_bytes_total{%s} %g\n", l, rx, l, tx)
}

// value reads one metric's value from the Aggregator's exposition.
func value(t *testing.T, a *Aggregator, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return math.NaN()
}

func nsValue(t *testing.T, a *Aggregator, name, ns string) float64 {
	t.Helper()
	return value(t, a, "canopy_namespace_"+name, map[string]string{"namespace": ns})
}

func check(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %g, want %g", what, got, want)
	}
}

// TestOnlyApplicationContainers: pod cgroups, node and system cgroups and
// every runtime's sandbox are never counted for CPU and memory.
func TestOnlyApplicationContainers(t *testing.T) {
	body := cad("t", "p", "app", "img", "/kubepods/pod1/c1", 100, 10, 1000, 100) +
		cad("t", "p", "", "", "/kubepods/pod1", 100, 50, 5000, 500) + // pod cgroup
		cad("", "", "", "", "/", 1, 900, 90000, 9000) + // node
		cad("", "", "", "", "/system.slice/kubelet", 1, 90, 900, 90) + // system
		cad("t", "p", "POD", "pause", "/kubepods/pod1/s1", 90, 1, 10, 1) + // docker sandbox
		cad("t", "q", "app", "img", "/kubepods/pod2/c2", 100, 20, 2000, 200) +
		cad("t", "q", "", "pause:3.5", "/kubepods/pod2/s2", 90, 2, 20, 2) + // containerd pause
		`container_memory_working_set_bytes{container_label_io_cri_containerd_kind="sandbox",` +
		`container_label_io_kubernetes_pod_name="q",container_label_io_kubernetes_pod_namespace="t",` +
		`container_label_io_kubernetes_container_name="",id="/s3",image="pause"} 7777` + "\n"
	c := &clock{t0}
	a := newTest(c)
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10+20)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 1000+2000)
	check(t, "rss", nsValue(t, a, "memory_rss_bytes", "t"), 100+200)
}

// TestPodCgroupFallback: a pod without any container series is counted from
// its pod cgroup, and the namespace says so.
func TestPodCgroupFallback(t *testing.T) {
	body := cad("t", "p", "", "", "/kubepods/pod1", 100, 50, 5000, 500) +
		cad("t", "q", "app", "img", "/kubepods/pod2/c", 100, 20, 2000, 200) +
		cad("t", "q", "", "", "/kubepods/pod2", 100, 25, 2500, 250)
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 5000+2000)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 50+20)
	src := func(s string) float64 {
		return value(t, a, "canopy_namespace_pods_usage_source",
			map[string]string{"namespace": "t", "source": s})
	}
	check(t, "pods from pod cgroup", src(SourcePodCgroup), 1)
	check(t, "pods from cadvisor", src(SourceCadvisor), 1)
}

// TestOneCurrentInstance: a dead instance still reported is not added to the
// live one; the newest start time wins.
func TestOneCurrentInstance(t *testing.T) {
	body := cad("t", "p", "app", "img", "/kubepods/pod1/old", 100, 30, 3000, 300) +
		cad("t", "p", "app", "img", "/kubepods/pod1/new", 200, 4, 400, 40)
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 400)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 4)
}

// TestStaleSamples: a sample more than two minutes older than the scrape's
// newest sample does not count.
func TestStaleSamples(t *testing.T) {
	now := int64(1_700_000_000_000)
	body := fmt.Sprintf(`container_memory_working_set_bytes{container="a",image="i",namespace="t",pod="p"} 100 %d
container_memory_working_set_bytes{container="b",image="i",namespace="t",pod="p"} 20 %d
container_memory_working_set_bytes{container="c",image="i",namespace="t",pod="q"} 3 %d
`, now, now-119_000, now-121_000)
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 120)
}

// TestCounters follows one container through first sight, increases, a
// drop, a new instance, and its disappearance.
func TestCounters(t *testing.T) {
	c := &clock{t0}
	a := newTest(c)
	steps := []struct {
		body string
		want float64
	}{
		{cad("t", "p", "a", "i", "/c1", 100, 50, 1, 1), 50}, // first sight: whole value
		{cad("t", "p", "a", "i", "/c1", 100, 60, 1, 1), 60}, // +10
		{cad("t", "p", "a", "i", "/c1", 100, 5, 1, 1), 65},  // drop: reset, +5
		{cad("t", "p", "a", "i", "/c2", 300, 7, 1, 1), 72},  // new instance: +7
		{cad("t", "p", "a", "i", "/c2", 300, 7.5, 1, 1) + // +0.5, and the lingering
			cad("t", "p", "a", "i", "/c1", 100, 5, 1, 1), 72.5}, // old instance adds nothing
		{"", 72.5}, // gone: keeps what it added
		{cad("t", "p", "a", "i", "/c2", 300, 9, 1, 1), 74}, // back: +1.5
	}
	for k, s := range steps {
		c.now = c.now.Add(15 * time.Second)
		body := s.body + "container_scrape_error 0\n"
		if s.body == "" {
			body += cad("u", "other", "a", "i", "/o", 1, 1, 1, 1) // the node is not empty
		}
		a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
		got := value(t, a, "canopy_namespace_cpu_usage_seconds_total",
			map[string]string{"namespace": "t"})
		check(t, fmt.Sprintf("step %d cpu", k), got, s.want)
	}
}

// TestOOMOfVanishedContainer: OOM events of a container that disappears
// stay in its namespace.
func TestOOMOfVanishedContainer(t *testing.T) {
	oom := func(id string, start, n float64) string {
		l := fmt.Sprintf(`container="a",id=%q,image="i",namespace="t",pod="p"`, id)
		return fmt.Sprintf("container_start_time_seconds{%s} %g\ncontainer_oom_events_total{%s} %g\n"+
			"container_memory_working_set_bytes{%s} 1\n", l, start, l, n, l)
	}
	c := &clock{t0}
	a := newTest(c)
	for _, body := range []string{oom("/c1", 100, 0), oom("/c1", 100, 2), oom("/c2", 200, 0)} {
		c.now = c.now.Add(15 * time.Second)
		a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	}
	check(t, "oom events", nsValue(t, a, "oom_events_total", "t"), 2)
}

// TestNetwork: each pod's interfaces count once, from its sandbox;
// host-network pods are not counted for their namespace.
func TestNetwork(t *testing.T) {
	body := cad("t", "p", "app", "img", "/kubepods/p/c", 100, 1, 1, 1) +
		netSeries("t", "p", "POD", "pause", "/kubepods/p/s", "eth0", 100, 10) +
		netSeries("t", "p", "POD", "pause", "/kubepods/p/s", "tunl0", 5, 1) +
		netSeries("t", "h", "POD", "pause", "/kubepods/h/s", "eth0", 99999, 99999)
	pods := []source.Pod{
		{Namespace: "t", Name: "p", UID: "u1", App: "web", Phase: "Running"},
		{Namespace: "t", Name: "h", UID: "u2", App: "proxy", Phase: "Running", HostNetwork: true},
	}
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, pods)
	check(t, "rx", nsValue(t, a, "network_receive_bytes_total", "t"), 105)
	check(t, "tx", nsValue(t, a, "network_transmit_bytes_total", "t"), 11)
	check(t, "app rx", value(t, a, "canopy_app_network_receive_bytes_total",
		map[string]string{"namespace": "t", "app": "web"}), 105)
}

// TestNoDoubleCounting: a pod in cAdvisor's answer takes nothing from
// /metrics/resource or /stats/summary; a pod absent from cAdvisor takes
// /metrics/resource; a pod in neither takes /stats/summary.
func TestNoDoubleCounting(t *testing.T) {
	cadvisor := cad("t", "a", "c", "img", "/a", 100, 10, 1000, 100)
	resource := `container_cpu_usage_seconds_total{container="c",namespace="t",pod="a"} 10 1700000000000
container_memory_working_set_bytes{container="c",namespace="t",pod="a"} 1000 1700000000000
container_cpu_usage_seconds_total{container="c",namespace="t",pod="b"} 20 1700000000000
container_memory_working_set_bytes{container="c",namespace="t",pod="b"} 2000 1700000000000
scrape_error 0
`
	summary := `{"node":{"nodeName":"n1"},"pods":[
 {"podRef":{"name":"a","namespace":"t"},"containers":[{"name":"c",
   "cpu":{"usageCoreNanoSeconds":10000000000},"memory":{"workingSetBytes":1000}}]},
 {"podRef":{"name":"b","namespace":"t"},"containers":[{"name":"c",
   "cpu":{"usageCoreNanoSeconds":20000000000},"memory":{"workingSetBytes":2000}}]},
 {"podRef":{"name":"c","namespace":"t"},"containers":[{"name":"c",
   "cpu":{"usageCoreNanoSeconds":30000000000},"memory":{"workingSetBytes":3000}}],
  "network":{"name":"eth0","rxBytes":70,"interfaces":[{"name":"eth0","rxBytes":70}]}}]}`
	sp := payload("n1", source.KubeletSummary, summary)
	sp.ContentType = "application/json"
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{
		payload("n1", source.KubeletCadvisor, cadvisor),
		payload("n1", source.KubeletResource, resource), sp,
	}, nil)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 1000+2000+3000)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10+20+30)
	check(t, "rx", nsValue(t, a, "network_receive_bytes_total", "t"), 70)
}

// TestFailedNode: a failed endpoint adds nothing, is down with its reason
// counted, and its last good gauges age out after two intervals.
func TestFailedNode(t *testing.T) {
	c := &clock{t0}
	a := newTest(c)
	good := cad("t", "p", "a", "i", "/c", 100, 10, 1000, 100)
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, good)}, nil)

	failed := source.Payload{Target: source.Target{Node: "n1", Kind: source.KubeletCadvisor},
		StatusCode: 403, Err: errors.New("read kubelet: 403 Forbidden")}
	c.now = c.now.Add(15 * time.Second)
	a.Cycle([]source.Payload{failed}, nil)
	up := map[string]string{"node": "n1", "endpoint": "kubelet-cadvisor"}
	check(t, "up", value(t, a, "canopy_target_up", up), 0)
	check(t, "errors", value(t, a, "canopy_scrape_errors_total",
		map[string]string{"node": "n1", "reason": "http_403"}), 1)
	check(t, "working set kept", nsValue(t, a, "memory_working_set_bytes", "t"), 1000)

	c.now = c.now.Add(20 * time.Second) // 35 s since the last good scrape
	a.Cycle([]source.Payload{failed}, nil)
	if ws := nsValue(t, a, "memory_working_set_bytes", "t"); !math.IsNaN(ws) {
		t.Errorf("working set of a node down for two intervals = %g, want no series", ws)
	}
	check(t, "cpu kept", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10)

	// container_scrape_error 1 is a failure too, and adds nothing.
	c.now = c.now.Add(15 * time.Second)
	bad := cad("t", "p", "a", "i", "/c", 100, 99, 1, 1) + "container_scrape_error 1\n"
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, bad)}, nil)
	check(t, "cpu after scrape_error", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10)
	check(t, "scrape_error counted", value(t, a, "canopy_scrape_errors_total",
		map[string]string{"node": "n1", "reason": "scrape_error"}), 1)

	// A protobuf answer is refused with its own reason.
	pb := payload("n1", source.KubeletCadvisor, "\x08\x01")
	pb.ContentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"
	a.Cycle([]source.Payload{pb}, nil)
	check(t, "protobuf counted", value(t, a, "canopy_scrape_errors_total",
		map[string]string{"node": "n1", "reason": "protobuf"}), 1)
}

// TestPerCPUSeries: without cpu="total", per-CPU series are summed.
func TestPerCPUSeries(t *testing.T) {
	body := `container_cpu_usage_seconds_total{container_name="a",cpu="cpu00",image="i",namespace="t",pod_name="p"} 1.5
container_cpu_usage_seconds_total{container_name="a",cpu="cpu01",image="i",namespace="t",pod_name="p"} 2.5
container_cpu_usage_seconds_total{container_name="b",cpu="cpu00",image="i",namespace="t",pod_name="p"} 7
container_cpu_usage_seconds_total{container_name="b",cpu="total",image="i",namespace="t",pod_name="p"} 9
`
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 4+9)
}

// TestNamespaceFilter: only tenants are exposed, with their project label.
func TestNamespaceFilter(t *testing.T) {
	body := cad("canopy-shop", "p", "a", "i", "/c", 1, 1, 10, 1) +
		cad("kube-system", "p", "a", "i", "/k", 1, 1, 20, 1)
	a := New(Options{Now: (&clock{t0}).Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NamespaceFilter: func(ns string) (string, bool) {
			return strings.TrimPrefix(ns, "canopy-"), strings.HasPrefix(ns, "canopy-")
		}})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "tenant", value(t, a, "canopy_namespace_memory_working_set_bytes",
		map[string]string{"namespace": "canopy-shop", "project": "shop"}), 10)
	if _, ok := a.NamespaceUsage("kube-system"); ok {
		t.Error("kube-system is exposed though it is no tenant")
	}
}

// TestMetricNames: every family the Aggregator exposes is in MetricNames.
func TestMetricNames(t *testing.T) {
	names := map[string]bool{}
	for _, n := range MetricNames() {
		names[n] = true
	}
	for _, d := range allDescs.all() {
		s := d.String()
		i := strings.Index(s, `fqName: "`) + len(`fqName: "`)
		name := s[i : i+strings.IndexByte(s[i:], '"')]
		if !names[name] {
			t.Errorf("%s is exposed but not in MetricNames", name)
		}
		delete(names, name)
	}
	if len(names) != 0 {
		t.Errorf("MetricNames lists families never exposed: %v", names)
	}
	a := newTest(&clock{t0})
	if mfs, err := prometheusRegistry(a).Gather(); err != nil || len(mfs) != 0 {
		t.Errorf("empty aggregator: %d families, %v", len(mfs), err)
	}
}

func prometheusRegistry(c prometheus.Collector) *prometheus.Registry {
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	return r
}

// TestDefaultProjectLabel: by default every namespace is aggregated, and only
// tenant namespaces carry a project label.
func TestDefaultProjectLabel(t *testing.T) {
	body := cad("canopy-shop", "p", "a", "i", "/c", 1, 1, 10, 1) +
		cad("kube-system", "p", "a", "i", "/k", 1, 1, 20, 1)
	a := newTest(&clock{t0})
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, body)}, nil)
	check(t, "tenant", value(t, a, "canopy_namespace_memory_working_set_bytes",
		map[string]string{"namespace": "canopy-shop", "project": "shop"}), 10)
	check(t, "system namespace without project", value(t, a,
		"canopy_namespace_memory_working_set_bytes",
		map[string]string{"namespace": "kube-system", "project": ""}), 20)
}
