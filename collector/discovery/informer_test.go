package discovery_test

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"canopy.dev/canopy/collector/discovery"
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

// apiServer returns a client of the package's real API server.
func apiServer(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(api.Config(t))
}

// createNode creates a Node and sets its status, as a kubelet would.
func createNode(t *testing.T, cs kubernetes.Interface, n *corev1.Node) {
	t.Helper()
	ctx := context.Background()
	status := n.Status
	created, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", n.Name, err)
	}
	created.Status = status
	_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("update node status %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{})
	})
}

// startFactory starts the informers and waits for their first list.
func startFactory(t *testing.T, f informers.SharedInformerFactory, synced ...cache.InformerSynced) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(f.Shutdown) // cleanups run last first: cancel, then wait
	t.Cleanup(cancel)
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		t.Fatal("informers did not sync")
	}
}

// eventually retries check until it returns "" or five seconds pass.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNodesFromAPIServer(t *testing.T) {
	cs := apiServer(t)
	createNode(t, cs, node("disc-a", 10250, "Hostname", "disc-a", "InternalIP", "10.1.0.1"))
	createNode(t, cs, node("disc-b", 11250, "ExternalDNS", "b.example", "ExternalIP",
		"203.0.113.2"))
	createNode(t, cs, node("disc-c", 0)) // no address yet
	createNode(t, cs, node("disc-d", 0, "InternalIP", "10.1.0.4"))

	f := informers.NewSharedInformerFactory(cs, 0)
	nodes, err := discovery.NewNodes(f, discovery.NodeOptions{
		Access: discovery.Direct, TokenFile: "/token", InsecureSkipVerify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	startFactory(t, f, nodes.HasSynced)

	wantCadvisor := map[string]string{
		"disc-a": "https://10.1.0.1:10250/metrics/cadvisor",
		"disc-b": "https://203.0.113.2:11250/metrics/cadvisor",
		"disc-d": "https://10.1.0.4:10250/metrics/cadvisor",
	}
	eventually(t, func() string { return checkCadvisorURLs(nodes, wantCadvisor) })

	// The kubelet of disc-c reports its address later: discovery follows.
	ctx := context.Background()
	c, err := cs.CoreV1().Nodes().Get(ctx, "disc-c", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.1.0.3"}}
	c.Status.DaemonEndpoints.KubeletEndpoint.Port = 10260
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, c, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "disc-d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wantCadvisor["disc-c"] = "https://10.1.0.3:10260/metrics/cadvisor"
	delete(wantCadvisor, "disc-d")
	eventually(t, func() string { return checkCadvisorURLs(nodes, wantCadvisor) })
}

// checkCadvisorURLs compares the discovered cadvisor targets with want
// (node → URL), ignoring nodes other tests created.
func checkCadvisorURLs(nodes *discovery.Nodes, want map[string]string) string {
	targets, err := nodes.Targets()
	if err != nil {
		return err.Error()
	}
	got := map[string]string{}
	for _, tg := range targets {
		if tg.Kind == source.KubeletCadvisor && len(tg.Node) > 5 && tg.Node[:5] == "disc-" {
			got[tg.Node] = tg.URL
			if tg.BearerTokenFile != "/token" || !tg.InsecureSkipVerify {
				return "direct target without the token or TLS settings"
			}
		}
	}
	if len(got) != len(want) {
		return "discovered " + mapString(got)
	}
	for n, u := range want {
		if got[n] != u {
			return "discovered " + mapString(got)
		}
	}
	return ""
}

func mapString(m map[string]string) string {
	s := ""
	for k, v := range m {
		s += k + "=" + v + " "
	}
	return s
}

func TestNodesShardedFromAPIServer(t *testing.T) {
	cs := apiServer(t)
	names := []string{"shard-1", "shard-2", "shard-3", "shard-4", "shard-5", "shard-6"}
	for _, n := range names {
		createNode(t, cs, node(n, 0, "InternalIP", "10.2.0.1"))
	}

	// Two replicas together scrape every node exactly once.
	owner := map[string]int{}
	for i := range 2 {
		f := informers.NewSharedInformerFactory(cs, 0)
		shard := discovery.Shard{Index: i, Count: 2}
		nodes, err := discovery.NewNodes(f, discovery.NodeOptions{Access: discovery.Direct,
			Shard: shard})
		if err != nil {
			t.Fatal(err)
		}
		startFactory(t, f, nodes.HasSynced)
		targets, err := nodes.Targets()
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range targets {
			if tg.Kind == source.KubeletCadvisor && len(tg.Node) > 6 && tg.Node[:6] == "shard-" {
				owner[tg.Node]++
				if !shard.Owns(tg.Node) {
					t.Errorf("shard %d scrapes %s", i, tg.Node)
				}
			}
		}
	}
	for _, n := range names {
		if owner[n] != 1 {
			t.Errorf("%s scraped by %d replicas", n, owner[n])
		}
	}
}

func TestPodsFromAPIServer(t *testing.T) {
	cs := apiServer(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "canopy-shop"}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The pod as a user would create it, then its status as the kubelet sets it.
	pod := shopPod()
	pod.UID, pod.ResourceVersion = "", ""
	status := pod.Status
	created, err := cs.CoreV1().Pods("canopy-shop").Create(ctx, &pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = status
	created.Status.ContainerStatuses[0].Image = "shop:1"
	created.Status.ContainerStatuses[1].Image = "envoy"
	if _, err := cs.CoreV1().Pods("canopy-shop").UpdateStatus(ctx, created,
		metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	host := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "canopy-shop", Name: "host-agent",
			Labels: map[string]string{discovery.AppLabel: "agent"}},
		Spec: corev1.PodSpec{NodeName: "worker-2", HostNetwork: true,
			Containers: []corev1.Container{{Name: "a", Image: "agent"}}},
	}
	_, err = cs.CoreV1().Pods("canopy-shop").Create(ctx, &host, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	f := informers.NewSharedInformerFactory(cs, 0)
	pods, err := discovery.NewPods(f, discovery.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	startFactory(t, f, pods.HasSynced)

	var got map[string]source.Pod
	eventually(t, func() string {
		list, err := pods.List()
		if err != nil {
			return err.Error()
		}
		got = map[string]source.Pod{}
		for _, p := range list {
			got[p.Name] = p
		}
		if got[shopWant.Name].Phase != "Running" || got["host-agent"].Name == "" {
			return "pods not yet seen"
		}
		return ""
	})
	want := shopWant
	want.UID = string(created.UID)
	samePod(t, got[want.Name], want)
	if h := got["host-agent"]; !h.HostNetwork || h.App != "agent" || h.Node != "worker-2" ||
		h.Phase != "Pending" {
		t.Errorf("host-network pod: %+v", h)
	}
}
