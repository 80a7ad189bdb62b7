package collector_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/collector/discovery"
)

// kubeletServer serves bodies by path; a nil body hangs until the client
// gives up, a body starting with "PROTOBUF" answers as protobuf.
func kubeletServer(t *testing.T, bodies map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		switch {
		case !ok:
			http.NotFound(w, r)
		case body == nil:
			<-r.Context().Done()
		case strings.HasPrefix(string(body), "PROTOBUF"):
			w.Header().Set("Content-Type", "application/vnd.google.protobuf; "+
				"proto=io.prometheus.client.MetricFamily; encoding=delimited")
			_, _ = w.Write(body)
		case strings.HasSuffix(r.URL.Path, "/pods"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		default:
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write(body)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func podList(t *testing.T, pods ...corev1.Pod) []byte {
	t.Helper()
	b, err := json.Marshal(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList",
		APIVersion: "v1"}, Items: pods})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func apiPod(ns, name string, hostNet bool, restarts int32) corev1.Pod {
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{HostNetwork: hostNet,
			Containers: []corev1.Container{{Name: "c"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "c", RestartCount: restarts}}},
	}
}

// TestStaticTargetsWithKubeletPods: no API server; pod facts come from the
// kubelets' /pods, so host-network pods are known and their traffic left
// out; a hanging kubelet times out and the others still count; a protobuf
// answer is refused and counted.
func TestStaticTargetsWithKubeletPods(t *testing.T) {
	k1 := kubeletServer(t, map[string][]byte{
		"/metrics/cadvisor": []byte(node1Body),
		"/pods": podList(t, apiPod("canopy-a", "web-1", false, 1),
			apiPod("canopy-a", "agent-1", true, 0), apiPod("canopy-b", "db-0", false, 0)),
	})
	k2 := kubeletServer(t, map[string][]byte{"/metrics/cadvisor": nil, "/pods": nil})
	k3 := kubeletServer(t, map[string][]byte{"/metrics/cadvisor": []byte("PROTOBUF\x00\x01")})
	path := targetsFile(t, fmt.Sprintf(`
targets:
  - {node: node-1, url: %[1]s/metrics/cadvisor, kind: kubelet-cadvisor}
  - {node: node-1, url: %[1]s/pods, kind: kubelet-pods}
  - {node: node-2, url: %[2]s/metrics/cadvisor, kind: kubelet-cadvisor}
  - {node: node-2, url: %[2]s/pods, kind: kubelet-pods}
  - {node: node-3, url: %[3]s/metrics/cadvisor, kind: kubelet-cadvisor}
`, k1.URL, k2.URL, k3.URL))
	c, err := collector.New(collector.Config{TargetsFile: path, Logger: testLogger(t),
		Interval: 2 * time.Second, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Cycle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Payloads != 3 {
		t.Errorf("aggregated %d payloads, want the 3 metrics endpoints", st.Payloads)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	for _, c := range []struct {
		family, ns string
		want       float64
	}{
		{"network_receive_bytes_total", "canopy-a", 1000}, // agent-1 is hostNetwork
		{"network_transmit_bytes_total", "canopy-a", 500},
		{"cpu_usage_seconds_total", "canopy-a", 3.5},
		{"memory_working_set_bytes", "canopy-b", 300},
		{"container_restarts_total", "canopy-a", 1},
	} {
		if got := gauge(t, reg, "canopy_namespace_"+c.family, "namespace", c.ns); got != c.want {
			t.Errorf("canopy_namespace_%s{namespace=%q} = %g, want %g", c.family, c.ns, got,
				c.want)
		}
	}
	if got := gauge(t, reg, "canopy_namespace_pods", "namespace", "canopy-a",
		"phase", "Running"); got != 2 {
		t.Errorf("running pods in canopy-a = %g, want 2", got)
	}

	for _, c := range []struct {
		node, reason string
	}{{"node-2", "timeout"}, {"node-3", "protobuf"}} {
		if up := gauge(t, reg, "canopy_target_up", "node", c.node); up != 0 {
			t.Errorf("%s up = %g, want 0", c.node, up)
		}
		if n := gauge(t, reg, "canopy_scrape_errors_total", "node", c.node,
			"reason", c.reason); n != 1 {
			t.Errorf("%s errors{reason=%q} = %g, want 1", c.node, c.reason, n)
		}
	}
	if up := gauge(t, reg, "canopy_target_up", "node", "node-1"); up != 1 {
		t.Errorf("node-1 up = %g", up)
	}
}

// TestStaticTargetsReload: an edited file is read at the next cycle; a
// broken edit keeps the last good list.
func TestStaticTargetsReload(t *testing.T) {
	k := kubeletServer(t, map[string][]byte{"/metrics/cadvisor": []byte(node1Body)})
	one := fmt.Sprintf("targets:\n"+
		"  - {node: a, url: %s/metrics/cadvisor, kind: kubelet-cadvisor}\n", k.URL)
	path := targetsFile(t, one)
	c := newCollector(t, path)
	if st, _ := c.Cycle(context.Background()); st.Payloads != 1 {
		t.Fatalf("%d payloads", st.Payloads)
	}

	two := one + fmt.Sprintf("  - {node: b, url: %s/metrics/cadvisor, kind: kubelet-cadvisor}\n",
		k.URL)
	rewrite(t, path, two, time.Now().Add(time.Second))
	if st, _ := c.Cycle(context.Background()); st.Payloads != 2 {
		t.Errorf("after adding a target: %d payloads, want 2", st.Payloads)
	}

	rewrite(t, path, "targets: [{node: c}]\n", time.Now().Add(2*time.Second))
	if st, _ := c.Cycle(context.Background()); st.Payloads != 2 {
		t.Errorf("after a broken edit: %d payloads, want the last good 2", st.Payloads)
	}
}

func rewrite(t *testing.T, path, body string, mod time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// TestRunCountsOverruns: a kubelet that answers only at the deadline makes
// each cycle last its whole interval plus aggregation, so the next tick is
// skipped and counted, and cycles never overlap.
func TestRunCountsOverruns(t *testing.T) {
	k := kubeletServer(t, map[string][]byte{"/metrics/cadvisor": nil})
	path := targetsFile(t, fmt.Sprintf(
		"targets:\n  - {node: slow, url: %s/metrics/cadvisor, kind: kubelet-cadvisor}\n", k.URL))
	c, err := collector.New(collector.Config{TargetsFile: path, Logger: testLogger(t),
		Interval: 200 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, func() bool { return gauge(t, reg, "canopy_collector_cycles_skipped_total") >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	path := targetsFile(t, "targets: []\n")
	cases := map[string]struct {
		cfg  collector.Config
		want error
	}{
		"nothing to scrape": {collector.Config{}, collector.ErrNoTargets},
		"bad access": {collector.Config{TargetsFile: path, Access: "tunnel"},
			discovery.ErrInvalidAccess},
		"bad shard": {collector.Config{TargetsFile: path,
			Shard: discovery.Shard{Index: 2, Count: 2}}, discovery.ErrInvalidShard},
		"bad file": {collector.Config{TargetsFile: targetsFile(t, "targets: [{node: x}]")},
			discovery.ErrInvalidTargets},
		"absent file": {collector.Config{TargetsFile: path + ".absent"}, os.ErrNotExist},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := collector.New(c.cfg); !errors.Is(err, c.want) {
				t.Errorf("err %v, want %v", err, c.want)
			}
		})
	}
}
