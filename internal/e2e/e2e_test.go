//go:build e2e

// Package e2e runs Canopy's main job from nothing on one machine, with real
// parts: a real kube-apiserver and etcd, three stand-in kubelets serving the
// recorded outputs over TLS, a real Prometheus scraping Canopy, the Grafana
// stand-in, and canopy serve itself on SQLite and then on PostgreSQL. It
// drives everything through the public API only. Run it with `make e2e`.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"canopy.dev/canopy/dashboards/grafanatest"
	"canopy.dev/canopy/internal/fakekubelet"
	"canopy.dev/canopy/internal/testenv"
)

const (
	kubeletToken = "e2e-kubelet-token"
	grafanaUser  = "admin"
	grafanaPass  = "e2e-grafana-password"
	adminEmail   = "root@e2e.test"
)

// node is one stand-in kubelet: the recorded outputs it serves and which of
// their namespaces it renames to a tenant's.
type node struct {
	cadvisor, summary string
	from, tenant      string // namespace in the recording → "alpha" or "beta"
}

const resourceFixture = "kubelet-1.21-kind-containerd.metrics-resource.txt"

var nodes = []node{
	{"kubelet-1.22-minikube-containerd-cgroupv2.metrics-cadvisor.txt",
		"kubelet-1.22-minikube-containerd-cgroupv2.stats-summary.json", "scraper", "alpha"},
	{"kubelet-1.35-minikube-containerd2-cgroupv2-psi.metrics-cadvisor.txt",
		"kubelet-1.35-minikube-containerd2-cgroupv2-psi-swap.stats-summary.json", "scraper", "beta"},
	{"kubelet-1.18-minikube-docker-systemd-cgroupv1.metrics-cadvisor.txt",
		"kubelet-1.18-minikube-docker-systemd-cgroupv1.stats-summary.json", "scraper", "beta"},
}

func TestEndToEnd(t *testing.T) {
	rep := &report{}
	defer rep.print(os.Stdout)

	// The cluster: a real kube-apiserver and etcd.
	done := rep.step(t, "start kube-apiserver and etcd")
	env := &envtest.Environment{BinaryAssetsDirectory: testenv.KubeAssets(t)}
	restCfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kube := kubernetes.NewForConfigOrDie(restCfg)
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	writeFile(t, kubeconfig, string(env.KubeConfig))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	createNamespace(t, kube, "canopy-system")
	// envtest runs no kube-controller-manager; stand in for its namespace
	// controller so that deleted namespaces go away.
	go finalizeNamespaces(ctx, kube)
	done()

	done = rep.step(t, "build canopy")
	bin := filepath.Join(dir, "canopy")
	build := exec.Command("go", "build", "-o", bin, "./cmd/canopy")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build canopy: %v\n%s", err, out)
	}
	done()

	backends := []struct{ name, url string }{
		{"sqlite", "sqlite://" + filepath.Join(dir, "canopy.db")},
		{"postgres", testenv.PostgresURL(t)},
	}
	for _, b := range backends {
		ok := t.Run(b.name, func(t *testing.T) {
			s := &scenario{t: t, rep: rep, kube: kube, backend: b.name, bin: bin,
				kubeconfig: kubeconfig, dbURL: b.url}
			s.run()
		})
		if !ok {
			break
		}
	}
}

// scenario is one run of the main job against one database backend.
type scenario struct {
	t          *testing.T
	rep        *report
	kube       kubernetes.Interface
	backend    string
	bin        string
	kubeconfig string
	dbURL      string

	canopy  *client
	grafana *grafanatest.Server
	prom    *testenv.Prometheus
	alpha   *tenant
	beta    *tenant
}

// tenant is one user with one project and one app.
type tenant struct {
	name      string // "alpha" or "beta"
	email     string
	api       *client
	projectID string
	appID     string
	project   string // project name
	namespace string
}

func (s *scenario) run() {
	t := s.t
	s.startParts()

	s.alpha = &tenant{name: "alpha", email: "alpha-" + s.backend + "@e2e.test"}
	s.beta = &tenant{name: "beta", email: "beta-" + s.backend + "@e2e.test"}
	tenants := []*tenant{s.alpha, s.beta}

	done := s.rep.step(t, s.backend+": 1. register two users")
	for _, tn := range tenants {
		s.register(tn)
	}
	done()

	done = s.rep.step(t, s.backend+": 2. create a project and an app for each")
	for _, tn := range tenants {
		s.createProjectAndApp(tn)
	}
	done()

	done = s.rep.step(t, s.backend+": 3. namespaces and workloads exist")
	for _, tn := range tenants {
		s.checkWorkloads(tn)
	}
	done()

	done = s.rep.step(t, s.backend+": 4. usage and Prometheus show each tenant only its own")
	s.checkUsage(s.alpha, s.beta)
	s.checkUsage(s.beta, s.alpha)
	s.checkPrometheus(s.alpha, s.beta)
	s.checkPrometheus(s.beta, s.alpha)
	done()

	done = s.rep.step(t, s.backend+": 5. Grafana holds one organization per project")
	for _, tn := range tenants {
		s.checkGrafana(tn)
	}
	done()

	done = s.rep.step(t, s.backend+": 6. scale an app")
	s.scale(s.beta, 3)
	done()

	done = s.rep.step(t, s.backend+": 7. delete one project, the other is untouched")
	s.deleteProject(s.alpha, s.beta)
	done()
}

// startParts starts the stand-in kubelets (as Nodes), the Grafana stand-in,
// Prometheus and canopy serve.
func (s *scenario) startParts() {
	t := s.t
	done := s.rep.step(t, s.backend+": start kubelets, Grafana stand-in, Prometheus, canopy")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, kubeletToken)

	// Three kubelets, each registered as a Node pointing at it.
	var caFile string
	for i, n := range nodes {
		ns := "canopy-" + n.tenant + "-" + s.backend
		k, err := fakekubelet.Start(fakekubelet.Options{
			Bodies: map[string][]byte{
				"/metrics/cadvisor": testenv.Fixture(t, n.cadvisor),
				"/stats/summary":    testenv.Fixture(t, n.summary),
				// Every node also serves the one recorded /metrics/resource;
				// its pods have no cAdvisor series, so they count once.
				"/metrics/resource": testenv.Fixture(t, resourceFixture),
			},
			Token:      kubeletToken,
			Namespaces: map[string]string{n.from: ns},
			Step:       0.01,
		}, dir)
		if err != nil {
			t.Fatalf("start kubelet: %v", err)
		}
		t.Cleanup(k.Close)
		caFile = k.CAFile // every httptest TLS server shares one certificate
		s.registerNode(fmt.Sprintf("e2e-%s-node-%d", s.backend, i+1), k)
	}

	s.grafana = grafanatest.New(t, grafanaUser, grafanaPass)

	addr := testenv.FreeAddr(t)
	s.prom = testenv.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: canopy
    honor_labels: true
    static_configs:
      - targets: [%q]
`, addr), nil)

	s.startCanopy(addr, map[string]string{
		"CANOPY_ADDR":                      addr,
		"CANOPY_DATABASE_URL":              s.dbURL,
		"CANOPY_KUBECONFIG":                s.kubeconfig,
		"CANOPY_KUBELET_TOKEN_FILE":        tokenFile,
		"CANOPY_KUBELET_CA_FILE":           caFile,
		"CANOPY_SCRAPE_INTERVAL":           "2s",
		"CANOPY_SCRAPE_TIMEOUT":            "1s",
		"CANOPY_RESYNC_INTERVAL":           "3s",
		"CANOPY_GRAFANA_URL":               s.grafana.URL,
		"CANOPY_GRAFANA_USER":              grafanaUser,
		"CANOPY_GRAFANA_PASSWORD":          grafanaPass,
		"CANOPY_PROMETHEUS_URL":            s.prom.URL,
		"CANOPY_ADMIN_EMAILS":              adminEmail,
		"CANOPY_LEADER_ELECTION":           "true",
		"CANOPY_LEADER_ELECTION_NAMESPACE": "canopy-system",
	})
	done()
}

// registerNode creates a Node whose InternalIP and kubelet port are k's.
func (s *scenario) registerNode(name string, k *fakekubelet.Kubelet) {
	t := s.t
	ctx := context.Background()
	n, err := s.kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node: %v", err)
	}
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: k.Host},
		{Type: corev1.NodeHostName, Address: name},
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(k.Port)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady,
		Status: corev1.ConditionTrue}}
	if _, err := s.kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update node status: %v", err)
	}
	t.Cleanup(func() {
		_ = s.kube.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// startCanopy runs canopy serve with env and waits until it is ready.
func (s *scenario) startCanopy(addr string, env map[string]string) {
	t := s.t
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	logPath := filepath.Join(t.TempDir(), "canopy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start canopy: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("canopy did not stop within 20s of SIGINT")
		}
		if t.Failed() || os.Getenv("E2E_LOGS") != "" {
			b, _ := os.ReadFile(logPath)
			t.Logf("canopy log (%s):\n%s", s.backend, tail(string(b), 200))
		}
	})

	s.canopy = &client{t: t, base: "http://" + addr}
	eventually(t, 30*time.Second, "canopy ready", func() error {
		code, _ := s.canopy.do(http.MethodGet, "/readyz", nil, nil)
		if code != http.StatusOK {
			return fmt.Errorf("readyz answered %d", code)
		}
		return nil
	})
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
