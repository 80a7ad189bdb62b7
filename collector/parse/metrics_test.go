package parse

import (
	"bytes"
	"errors"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"canopy.dev/canopy/internal/testenv"
)

// flat is a Sample copied out of its callback.
type flat struct {
	fam                                   Family
	ns, pod, container, image, cpu, iface string
	sandbox                               bool
	value                                 float64
}

func collect(body string, f Format) ([]flat, Stats) {
	var s Scanner
	var out []flat
	st := s.Metrics([]byte(body), f, func(x *Sample) {
		out = append(out, flat{x.Family, string(x.Namespace), string(x.Pod),
			string(x.Container), string(x.Image), string(x.CPU), string(x.Interface),
			x.Sandbox, x.Value})
	})
	return out, st
}

func TestMetricsNames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want flat
	}{
		{"new kubelet labels",
			`container_memory_rss{container="app",image="i",namespace="ns",pod="p"} 5`,
			flat{fam: MemoryRSS, ns: "ns", pod: "p", container: "app", image: "i", value: 5}},
		{"pre-1.16 labels",
			`container_memory_rss{container_name="app",image="i",namespace="ns",pod_name="p"} 5`,
			flat{fam: MemoryRSS, ns: "ns", pod: "p", container: "app", image: "i", value: 5}},
		{"standalone cAdvisor labels",
			`container_memory_rss{container_label_io_kubernetes_container_name="app",` +
				`container_label_io_kubernetes_pod_name="p",` +
				`container_label_io_kubernetes_pod_namespace="ns",image="i"} 5`,
			flat{fam: MemoryRSS, ns: "ns", pod: "p", container: "app", image: "i", value: 5}},
		{"containerd sandbox in standalone cAdvisor",
			`container_memory_rss{container_label_io_cri_containerd_kind="sandbox",` +
				`container_label_io_kubernetes_pod_name="p",` +
				`container_label_io_kubernetes_pod_namespace="ns",image="pause"} 5`,
			flat{fam: MemoryRSS, ns: "ns", pod: "p", image: "pause", sandbox: true, value: 5}},
		{"per-CPU series",
			`container_cpu_usage_seconds_total{container="a",cpu="cpu01",namespace="n",pod="p"} 2`,
			flat{fam: CPUUsage, ns: "n", pod: "p", container: "a", cpu: "cpu01", value: 2}},
		{"escaped label value",
			`container_network_receive_bytes_total{interface="e\"th0",namespace="n",pod="p"} 7`,
			flat{fam: NetworkReceive, ns: "n", pod: "p", iface: `e"th0`, value: 7}},
		{"resource endpoint's scrape error", `resource_scrape_error 1`,
			flat{fam: ScrapeError, value: 1}},
		{"old scrape error", `scrape_error 0`, flat{fam: ScrapeError, value: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, st := collect(tt.in+"\n", Text)
			if len(out) != 1 || out[0] != tt.want || st.Samples != 1 {
				t.Fatalf("got %+v (%+v), want %+v", out, st, tt.want)
			}
		})
	}
}

// TestMetricsDrops: each bad line is dropped and counted on its own, and the
// lines after it still count.
func TestMetricsDrops(t *testing.T) {
	in := `container_memory_rss{namespace="n",pod="p"} NaN
container_memory_rss{namespace="n",pod="p"} +Inf
container_start_time_seconds{namespace="n",pod="p"} -6.21355968e+10
container_memory_rss{namespace="n",pod="p" 1
` + "container_memory_rss{namespace=\"n\",pod=\"\xff\"} 1\n" + `other_family{this is not even parsed
container_memory_rss{namespace="n",pod="p"} 42
`
	out, st := collect(in, Text)
	if len(out) != 1 || out[0].value != 42 {
		t.Fatalf("got %+v, want the one good sample", out)
	}
	want := map[string]int{DropNaN: 1, DropInf: 1, DropZeroTime: 1, DropSyntax: 1, DropUTF8: 1}
	for reason, n := range want {
		if st.Dropped[reason] != n {
			t.Errorf("dropped[%s] = %d, want %d (all: %v)", reason, st.Dropped[reason], n, st.Dropped)
		}
	}
	if st.Lines != 7 {
		t.Errorf("lines = %d, want 7", st.Lines)
	}
}

// TestMetricsFixtures: the samples of Canopy's families in each real fixture
// are those Prometheus' parser finds, with nothing dropped.
func TestMetricsFixtures(t *testing.T) {
	for _, name := range textFixtures {
		t.Run(name, func(t *testing.T) {
			body := testenv.Fixture(t, name)
			want := 0
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
				if familyOf([]byte(l.Get(labels.MetricName))) != FamilyNone {
					want++
				}
			}
			var s Scanner
			st := s.Metrics(body, Text, func(*Sample) {})
			if st.Samples != want || len(st.Dropped) != 0 {
				t.Fatalf("samples = %d, dropped %v; textparse found %d", st.Samples, st.Dropped, want)
			}
		})
	}
}

// FuzzMetrics: any body is read without panic, and every line is either a
// sample passed on, a drop, or a line of another family.
func FuzzMetrics(f *testing.F) {
	f.Add([]byte("container_memory_rss{namespace=\"n\",pod=\"p\"} 1 2\n"))
	f.Add([]byte("container_cpu_usage_seconds_total{cpu=\"cpu00\",pod_name=\"p\"} NaN\nx 1\n"))
	f.Add([]byte("container_start_time_seconds{namespace=\"n\"} -62135596800\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, format := range []Format{Text, OpenMetrics} {
			var s Scanner
			n := 0
			st := s.Metrics(body, format, func(*Sample) { n++ })
			dropped := 0
			for _, d := range st.Dropped {
				dropped += d
			}
			if n != st.Samples || st.Samples+dropped > st.Lines {
				t.Fatalf("samples %d (callback %d) + dropped %d > lines %d",
					st.Samples, n, dropped, st.Lines)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	body := testenv.Fixture(b, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
	b.Run("canopy", func(b *testing.B) {
		var s Scanner
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			s.Metrics(body, Text, func(*Sample) {})
		}
	})
	b.Run("textparse", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		st := labels.NewSymbolTable()
		for b.Loop() {
			p := textparse.NewPromParser(body, st, false)
			var l labels.Labels
			for {
				e, err := p.Next()
				if err != nil {
					break
				}
				if e == textparse.EntrySeries {
					p.Labels(&l)
				}
			}
		}
	})
	b.Run("expfmt", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			p := expfmt.NewTextParser(model.UTF8Validation)
			if _, err := p.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSummaryFixtures(t *testing.T) {
	for _, name := range []string{
		"kubelet-1.18-minikube-docker-systemd-cgroupv1.stats-summary.json",
		"kubelet-1.22-minikube-containerd-cgroupv2.stats-summary.json",
		"kubelet-1.35-minikube-containerd2-cgroupv2-psi-swap.stats-summary.json",
		"kubelet-2018-minikube-docker-legacy.stats-summary.json",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Summary(testenv.Fixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Pods) == 0 {
				t.Fatal("no pods decoded")
			}
			// The default interface is counted once, never beside the list.
			for _, p := range s.Pods {
				if p.Network == nil || p.Network.Name == "" {
					continue
				}
				n := 0
				for _, i := range Interfaces(p.Network) {
					if i.Name == p.Network.Name {
						n++
					}
				}
				if n != 1 {
					t.Errorf("pod %s: default interface %s counted %d times",
						p.PodRef.Name, p.Network.Name, n)
				}
			}
		})
	}
}

func TestSummaryInterfaces(t *testing.T) {
	body := `{"node":{"nodeName":"n"},"pods":[
	 {"podRef":{"name":"a","namespace":"x"},"network":{"name":"eth0","rxBytes":10,"txBytes":1,
	   "interfaces":[{"name":"eth0","rxBytes":10,"txBytes":1},{"name":"tunl0","rxBytes":5}]}},
	 {"podRef":{"name":"b","namespace":"x"},"network":{"name":"eth0","rxBytes":7,"txBytes":2}}]}`
	s, err := Summary([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := func(p int) (rx uint64) {
		for _, i := range Interfaces(s.Pods[p].Network) {
			rx += *i.RxBytes
		}
		return rx
	}
	if got := sum(0); got != 15 {
		t.Errorf("pod with a list: rx = %d, want 15 (10 + 5, top level not added)", got)
	}
	if got := sum(1); got != 7 {
		t.Errorf("pod without a list: rx = %d, want the top-level 7", got)
	}
	if _, err := Summary([]byte(`{"pods":[]}`)); !errors.Is(err, ErrSummary) {
		t.Errorf("summary without node: err = %v, want ErrSummary", err)
	}
}

func FuzzSummary(f *testing.F) {
	f.Add([]byte(`{"node":{"nodeName":"n"},"pods":[{"podRef":{"name":"a"},"network":{}}]}`))
	f.Add([]byte(`{"node":{"nodeName":"n","cpu":{"usageCoreNanoSeconds":1}}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Summary(body)
		if err != nil {
			if !errors.Is(err, ErrSummary) {
				t.Fatalf("error %v does not wrap ErrSummary", err)
			}
			return
		}
		for _, p := range s.Pods {
			Interfaces(p.Network)
		}
	})
}
