package collector_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/internal/testenv"
)

// One kube-apiserver for the package: it takes seconds to start.
var api testenv.APIServer

func TestMain(m *testing.M) {
	code := m.Run()
	api.Stop()
	os.Exit(code)
}

func apiServer(t *testing.T) (*rest.Config, kubernetes.Interface) {
	t.Helper()
	cfg := api.Config(t)
	return cfg, kubernetes.NewForConfigOrDie(cfg)
}

// Bodies of two stand-in kubelets, containerd style: each pod has a pause
// sandbox (container="", pause image) carrying the pod's network, a pod
// cgroup (container="", no image) and its application containers.
//
// node-1: canopy-a/web-1 (app web), canopy-a/agent-1 (hostNetwork: its
// sandbox reports the node's traffic), canopy-b/db-0.
// node-2: canopy-b/db-1, whose container restarted: the dead instance
// (older start time, another id) is still reported.
const node1Body = `# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="",cpu="total",id="/",image="",namespace="",pod=""} 5000
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/podw",image="",namespace="canopy-a",pod="web-1"} 9
container_cpu_usage_seconds_total{container="",cpu="total",id="/kubepods/podw/s1",image="registry.k8s.io/pause:3.10",namespace="canopy-a",pod="web-1"} 0.25
container_cpu_usage_seconds_total{container="web",cpu="total",id="/kubepods/podw/c1",image="nginx:1.27",namespace="canopy-a",pod="web-1"} 2.5
container_cpu_usage_seconds_total{container="agent",cpu="total",id="/kubepods/poda/c1",image="agent:2",namespace="canopy-a",pod="agent-1"} 1
container_cpu_usage_seconds_total{container="db",cpu="total",id="/kubepods/podd/c1",image="postgres:17",namespace="canopy-b",pod="db-0"} 4
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="",id="/",image="",namespace="",pod=""} 8e9
container_memory_working_set_bytes{container="web",id="/kubepods/podw/c1",image="nginx:1.27",namespace="canopy-a",pod="web-1"} 100
container_memory_working_set_bytes{container="agent",id="/kubepods/poda/c1",image="agent:2",namespace="canopy-a",pod="agent-1"} 50
container_memory_working_set_bytes{container="db",id="/kubepods/podd/c1",image="postgres:17",namespace="canopy-b",pod="db-0"} 300
# TYPE container_memory_rss gauge
container_memory_rss{container="web",id="/kubepods/podw/c1",image="nginx:1.27",namespace="canopy-a",pod="web-1"} 80
container_memory_rss{container="agent",id="/kubepods/poda/c1",image="agent:2",namespace="canopy-a",pod="agent-1"} 40
container_memory_rss{container="db",id="/kubepods/podd/c1",image="postgres:17",namespace="canopy-b",pod="db-0"} 200
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{container="",id="/",image="",interface="eth0",namespace="",pod=""} 1e9
container_network_receive_bytes_total{container="",id="/kubepods/podw/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-a",pod="web-1"} 1000
container_network_receive_bytes_total{container="",id="/kubepods/poda/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-a",pod="agent-1"} 1e9
container_network_receive_bytes_total{container="",id="/kubepods/podd/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-b",pod="db-0"} 7
# TYPE container_network_transmit_bytes_total counter
container_network_transmit_bytes_total{container="",id="/kubepods/podw/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-a",pod="web-1"} 500
container_network_transmit_bytes_total{container="",id="/kubepods/poda/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-a",pod="agent-1"} 2e9
container_network_transmit_bytes_total{container="",id="/kubepods/podd/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-b",pod="db-0"} 3
`

const node2Body = `# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="db",cpu="total",id="/kubepods/pode/old",image="postgres:17",namespace="canopy-b",pod="db-1"} 100
container_cpu_usage_seconds_total{container="db",cpu="total",id="/kubepods/pode/new",image="postgres:17",namespace="canopy-b",pod="db-1"} 1.5
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="db",id="/kubepods/pode/old",image="postgres:17",namespace="canopy-b",pod="db-1"} 999
container_memory_working_set_bytes{container="db",id="/kubepods/pode/new",image="postgres:17",namespace="canopy-b",pod="db-1"} 20
# TYPE container_memory_rss gauge
container_memory_rss{container="db",id="/kubepods/pode/old",image="postgres:17",namespace="canopy-b",pod="db-1"} 888
container_memory_rss{container="db",id="/kubepods/pode/new",image="postgres:17",namespace="canopy-b",pod="db-1"} 10
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="db",id="/kubepods/pode/old",image="postgres:17",namespace="canopy-b",pod="db-1"} 1700000000
container_start_time_seconds{container="db",id="/kubepods/pode/new",image="postgres:17",namespace="canopy-b",pod="db-1"} 1700000060
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{container="",id="/kubepods/pode/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-b",pod="db-1"} 11
# TYPE container_network_transmit_bytes_total counter
container_network_transmit_bytes_total{container="",id="/kubepods/pode/s1",image="registry.k8s.io/pause:3.10",interface="eth0",namespace="canopy-b",pod="db-1"} 13
`

// tlsKubelet is a stand-in kubelet over TLS that wants one bearer token.
func tlsKubelet(t *testing.T, token string, bodies map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// writeCA writes the certificate the httptest TLS servers share.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func createNode(t *testing.T, cs kubernetes.Interface, name, url string) {
	t.Helper()
	ctx := context.Background()
	port, _ := strconv.Atoi(url[strings.LastIndex(url, ":")+1:])
	n, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createPod(t *testing.T, cs kubernetes.Interface, ns, name, node string, hostNet bool,
	restarts int32) {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels: map[string]string{discovery.AppLabel: strings.Split(name, "-")[0]}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: hostNet,
			Containers: []corev1.Container{{Name: "c", Image: "img"}}},
	}
	created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Phase = corev1.PodRunning
	created.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Image: "img",
		RestartCount: restarts}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCollectorInCluster runs the whole collector against a real API server:
// nodes discovered with their address and kubelet port, pods from the pod
// informer, kubelets reached directly over TLS with the service-account
// token, several namespaces aggregated.
func TestCollectorInCluster(t *testing.T) {
	cfg, cs := apiServer(t)
	ctx := context.Background()
	k1 := tlsKubelet(t, "sa-token", map[string]string{"/metrics/cadvisor": node1Body})
	k2 := tlsKubelet(t, "sa-token", map[string]string{"/metrics/cadvisor": node2Body})
	createNode(t, cs, "node-1", k1.URL)
	createNode(t, cs, "node-2", k2.URL)
	for _, ns := range []string{"canopy-a", "canopy-b"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx,
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	createPod(t, cs, "canopy-a", "web-1", "node-1", false, 0)
	createPod(t, cs, "canopy-a", "agent-1", "node-1", true, 0)
	createPod(t, cs, "canopy-b", "db-0", "node-1", false, 0)
	createPod(t, cs, "canopy-b", "db-1", "node-2", false, 2)

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("sa-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := collector.New(collector.Config{
		Logger: testLogger(t), Kubernetes: cs, REST: cfg, Access: discovery.Direct,
		TokenFile: tokenFile, CAFile: writeCA(t, k1),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	// Run's first cycle may precede the pods' arrival in the informer; a
	// cycle of our own after the informer has them is deterministic.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	waitFor(t, func() bool {
		if _, err := c.Cycle(ctx); err != nil {
			t.Fatal(err)
		}
		return gauge(t, reg, "canopy_namespace_pods", "namespace", "canopy-b",
			"phase", "Running") == 2
	})

	// Worked out by hand from the bodies above.
	want := map[string]map[string]float64{
		"canopy-a": {
			"cpu_usage_seconds_total":      2.5 + 1, // web and agent; pod cgroup and sandbox never
			"memory_working_set_bytes":     100 + 50,
			"memory_rss_bytes":             80 + 40,
			"network_receive_bytes_total":  1000, // agent-1 is hostNetwork: the node's traffic
			"network_transmit_bytes_total": 500,
			"container_restarts_total":     0,
		},
		"canopy-b": {
			"cpu_usage_seconds_total":      4 + 1.5, // db-1's dead instance (100) not added
			"memory_working_set_bytes":     300 + 20,
			"memory_rss_bytes":             200 + 10,
			"network_receive_bytes_total":  7 + 11,
			"network_transmit_bytes_total": 3 + 13,
			"container_restarts_total":     2,
		},
	}
	for ns, families := range want {
		for family, w := range families {
			got := gauge(t, reg, "canopy_namespace_"+family, "namespace", ns)
			if got != w {
				t.Errorf("canopy_namespace_%s{namespace=%q} = %g, want %g", family, ns, got, w)
			}
		}
	}
	for node, up := range map[string]float64{"node-1": 1, "node-2": 1} {
		got := gauge(t, reg, "canopy_target_up", "node", node, "endpoint", "kubelet-cadvisor")
		if got != up {
			t.Errorf("canopy_target_up{node=%q} = %g", node, got)
		}
	}
	// Nodes also have /metrics/resource and /stats/summary targets; these
	// stand-ins do not serve them, and they count as down.
	if got := gauge(t, reg, "canopy_target_up", "node", "node-1",
		"endpoint", "kubelet-summary"); got != 0 {
		t.Errorf("unserved summary endpoint up = %g", got)
	}
}

// TestProxyAccessNamesRBAC scrapes through the API server's node proxy as a
// user without nodes/proxy: the answer is 403 and the error says what to
// grant.
func TestProxyAccessNamesRBAC(t *testing.T) {
	user := api.AddUser(t, "canopy-unprivileged")
	s, err := scrape.New(scrape.Options{APIServer: user})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := discovery.NodeTargets(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w"}},
		discovery.NodeOptions{Access: discovery.Proxy, APIServer: user.Host})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Scrape(context.Background(), targets[:1])[0]
	if !errors.Is(p.Err, scrape.ErrForbidden) || !strings.Contains(p.Err.Error(), "nodes/proxy") {
		t.Fatalf("err %v, want forbidden naming nodes/proxy", p.Err)
	}
	if p.StatusCode != http.StatusForbidden || p.Target.Kind != source.KubeletCadvisor {
		t.Errorf("status %d kind %s", p.StatusCode, p.Target.Kind)
	}
}

// TestProxyAccessThroughAPIServer scrapes a discovered node through the
// API server's node proxy with the cluster credentials. The API server
// refuses to proxy to loopback addresses (the only ones tests may listen
// on), so the stand-in is never reached: the check is that the URL and
// credentials are accepted (not 401, 403 or 404) and the refusal is a clean
// failed payload.
func TestProxyAccessThroughAPIServer(t *testing.T) {
	cfg, cs := apiServer(t)
	k := tlsKubelet(t, "unused", map[string]string{"/metrics/cadvisor": node1Body})
	createNode(t, cs, "proxied", k.URL)
	node, err := cs.CoreV1().Nodes().Get(context.Background(), "proxied", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := scrape.New(scrape.Options{APIServer: cfg})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := discovery.NodeTargets(node, discovery.NodeOptions{Access: discovery.Proxy,
		APIServer: cfg.Host})
	if err != nil {
		t.Fatal(err)
	}
	p := s.Scrape(context.Background(), targets[:1])[0]
	if p.StatusCode != http.StatusBadRequest || !errors.Is(p.Err, scrape.ErrHTTPStatus) {
		t.Errorf("status %d err %v, want the API server's 400 for a loopback node", p.StatusCode,
			p.Err)
	}
}

// gauge returns the value of the first series of name with the given labels
// (name, value pairs), or -1 when there is none.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				return value(m)
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		if have[pairs[i]] != pairs[i+1] {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return -1
}
