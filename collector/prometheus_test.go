package collector_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/internal/testenv"
)

// cadvisorFixtures are the recorded kubelet /metrics/cadvisor outputs.
var cadvisorFixtures = []string{
	"kubelet-1.18-minikube-docker-systemd-cgroupv1.metrics-cadvisor.txt",
	"kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt",
	"kubelet-1.22-minikube-containerd-cgroupv2.metrics-cadvisor.txt",
	"kubelet-1.35-minikube-containerd2-cgroupv2-psi.metrics-cadvisor.txt",
	"kubelet-post1.16-kind-containerd.metrics-cadvisor.txt",
}

// mixin holds the kubernetes-mixin style expressions Prometheus evaluates
// over the stand-in kubelet, by the Canopy family they must equal. JOB stands
// for the job's selector.
//
// CPU and memory: application containers, the largest value per container
// (one instance each in these fixtures). container!="POD" leaves out
// Docker's pause sandbox, as the mixin's Docker-era rules did; containerd's
// sandbox has container="" and is left out by container!="" already. Canopy
// adds one rule the mixin lacks: a pod with no application container series
// at all (still being created, or its containers already gone) counts its
// pod cgroup (container="", image="") instead of nothing. The "or ... unless"
// term is that rule in PromQL, so Prometheus computes it from the same
// scrape too.
//
// Network belongs to the pod: Docker reports it on container="POD",
// containerd on the sandbox with container="", never on the application
// containers. The max per pod and interface takes each interface once,
// whichever series carries it; the node's own cgroups have no pod.
var mixin = map[string]string{
	"canopy_namespace_memory_working_set_bytes": withPodCgroup(
		"container_memory_working_set_bytes"),
	"canopy_namespace_memory_rss_bytes":        withPodCgroup("container_memory_rss"),
	"canopy_namespace_cpu_usage_seconds_total": withPodCgroup("container_cpu_usage_seconds_total"),
	"canopy_namespace_network_receive_bytes_total": `sum by (namespace) (max by (namespace, ` +
		`pod, interface) (container_network_receive_bytes_total{JOB, namespace!="", pod!=""}))`,
	"canopy_namespace_network_transmit_bytes_total": `sum by (namespace) (max by (namespace, ` +
		`pod, interface) (container_network_transmit_bytes_total{JOB, namespace!="", pod!=""}))`,
}

// withPodCgroup is the mixin's per-namespace sum of a container family, plus
// the pod cgroup of pods that have no application container series.
func withPodCgroup(family string) string {
	apps := `max by (namespace, pod, container) (` + family +
		`{JOB, container!="", container!="POD", image!=""})`
	cgroups := `max by (namespace, pod) (` + family +
		`{JOB, namespace!="", pod!="", container="", image=""})`
	return `sum by (namespace) (` + apps + ` or (` + cgroups + ` unless on (namespace, pod) ` +
		apps + `))`
}

// TestMatchesPrometheus serves every cadvisor fixture from a stand-in
// kubelet that both a real Prometheus and Canopy scrape, and checks that per
// namespace Canopy's figures equal what Prometheus computes from the same
// bytes with the mixin's expressions.
//
// Timestamps: the fixtures carry their recording's millisecond timestamps,
// years old. Prometheus would reject them as out of bounds, so it scrapes
// with honor_timestamps: false and stamps every sample with the scrape time.
// Canopy reads the same bytes unchanged; it only compares timestamps within
// one scrape (a sample two minutes older than the newest is stale), and no
// fixture has one (they span 17 to 26 s), so neither side drops a sample the
// other keeps. The stale rule itself is tested on small inputs.
func TestMatchesPrometheus(t *testing.T) {
	type pair struct{ fixture, kubelet, canopy string }
	var pairs []pair
	for i, name := range cadvisorFixtures {
		body := testenv.Fixture(t, name)
		kubelet := serveBody(t, "/metrics/cadvisor", body)
		c := newCollector(t, targetsFile(t, fmt.Sprintf(`
targets:
  - node: node-%d
    url: %s/metrics/cadvisor
    kind: kubelet-cadvisor
`, i, kubelet.URL)))
		if _, err := c.Cycle(context.Background()); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{name, hostOf(t, kubelet.URL), serveCollector(t, c)})
	}

	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n")
	for i, p := range pairs {
		fmt.Fprintf(&cfg, "  - job_name: kubelet-%d\n    honor_timestamps: false\n"+
			"    metrics_path: /metrics/cadvisor\n    static_configs: [{targets: [%q]}]\n",
			i, p.kubelet)
		fmt.Fprintf(&cfg, "  - job_name: canopy-%d\n    static_configs: [{targets: [%q]}]\n",
			i, p.canopy)
	}
	prom := testenv.StartPrometheus(t, cfg.String(), nil)
	waitScraped(t, prom, 2*len(pairs))

	for i, p := range pairs {
		t.Run(strings.TrimSuffix(p.fixture, ".metrics-cadvisor.txt"), func(t *testing.T) {
			compared := 0
			for family, expr := range mixin {
				job := fmt.Sprintf(`job="kubelet-%d"`, i)
				want := byNamespace(t, prom, strings.ReplaceAll(expr, "JOB", job))
				got := byNamespace(t, prom, fmt.Sprintf(`%s{job="canopy-%d"}`, family, i))
				if len(want) == 0 {
					t.Fatalf("%s: Prometheus found no namespace at all", family)
				}
				compareNamespaces(t, family, got, want)
				compared += len(want)
			}
			t.Logf("%d namespace figures equal", compared)
		})
	}
}

// compareNamespaces checks every namespace of want against got, within
// float rounding of a sum taken in another order.
func compareNamespaces(t *testing.T, family string, got, want map[string]float64) {
	t.Helper()
	for _, ns := range sortedKeys(want) {
		g, ok := got[ns]
		w := want[ns]
		switch {
		case !ok && w == 0:
			// A namespace whose figure is zero may be absent from Canopy.
		case !ok:
			t.Errorf("%s{namespace=%q}: Canopy has none, Prometheus %g", family, ns, w)
		case math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)):
			t.Errorf("%s{namespace=%q}: Canopy %.17g, Prometheus %.17g", family, ns, g, w)
		}
	}
	for ns, g := range got {
		if _, ok := want[ns]; !ok && g != 0 {
			t.Errorf("%s{namespace=%q}: Canopy %g, Prometheus has none", family, ns, g)
		}
	}
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// byNamespace runs an instant query and maps its answer by namespace.
func byNamespace(t *testing.T, prom *testenv.Prometheus, expr string) map[string]float64 {
	t.Helper()
	samples, err := prom.Query(context.Background(), expr)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64, len(samples))
	for _, s := range samples {
		out[s.Metric["namespace"]] = s.Value
	}
	return out
}

// waitScraped waits until Prometheus has scraped n targets successfully.
func waitScraped(t *testing.T, prom *testenv.Prometheus, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		samples, err := prom.Query(context.Background(), "count(up == 1)")
		if err == nil && len(samples) == 1 && int(samples[0].Value) == n {
			return
		}
		if time.Now().After(deadline) {
			up, _ := prom.Query(context.Background(), "up")
			t.Fatalf("Prometheus did not scrape all %d targets: %v %v", n, up, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// serveBody is a stand-in kubelet answering body at path in the text format.
func serveBody(t testing.TB, path string, body []byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// serveCollector serves c's metrics on /metrics and returns host:port.
func serveCollector(t *testing.T, c *collector.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return hostOf(t, srv.URL)
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// targetsFile writes a static targets file and returns its path.
func targetsFile(t testing.TB, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "targets.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newCollector builds a collector over a static targets file.
func newCollector(t *testing.T, path string) *collector.Collector {
	t.Helper()
	c, err := collector.New(collector.Config{TargetsFile: path, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
