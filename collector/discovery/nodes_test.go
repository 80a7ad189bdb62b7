package discovery_test

import (
	"errors"
	"hash/fnv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/source"
)

func node(name string, port int32, addrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for i := 0; i+1 < len(addrs); i += 2 {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{
			Type: corev1.NodeAddressType(addrs[i]), Address: addrs[i+1]})
	}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

func TestNodeAddressPreference(t *testing.T) {
	cases := []struct {
		name  string
		node  *corev1.Node
		want  string
		found bool
	}{
		{"internal ip first", node("n", 0, "ExternalIP", "203.0.113.9", "Hostname", "n1",
			"InternalIP", "10.0.0.1", "InternalIP", "10.0.0.2"), "10.0.0.1", true},
		{"hostname before external ip", node("n", 0, "ExternalIP", "203.0.113.9",
			"Hostname", "n1"), "n1", true},
		{"external ip before dns", node("n", 0, "ExternalDNS", "n.example", "InternalDNS",
			"n.internal", "ExternalIP", "203.0.113.9"), "203.0.113.9", true},
		{"internal dns before external dns", node("n", 0, "ExternalDNS", "n.example",
			"InternalDNS", "n.internal"), "n.internal", true},
		{"empty address skipped", node("n", 0, "InternalIP", "", "Hostname", "n1"), "n1", true},
		{"none", node("n", 0), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := discovery.NodeAddress(c.node)
			if got != c.want || ok != c.found {
				t.Errorf("got %q %v, want %q %v", got, ok, c.want, c.found)
			}
		})
	}
}

func TestNodeTargets(t *testing.T) {
	direct := discovery.NodeOptions{Access: discovery.Direct, TokenFile: "/token",
		CAFile: "/ca.crt"}
	got, err := discovery.NodeTargets(node("w1", 11250, "InternalIP", "fd00::5"), direct)
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Target{
		{Node: "w1", URL: "https://[fd00::5]:11250/metrics/cadvisor",
			Kind: source.KubeletCadvisor, BearerTokenFile: "/token", CAFile: "/ca.crt"},
		{Node: "w1", URL: "https://[fd00::5]:11250/metrics/resource",
			Kind: source.KubeletResource, BearerTokenFile: "/token", CAFile: "/ca.crt"},
		{Node: "w1", URL: "https://[fd00::5]:11250/stats/summary",
			Kind: source.KubeletSummary, BearerTokenFile: "/token", CAFile: "/ca.crt"},
	}
	sameTargets(t, got, want)

	// Port 0 means the kubelet did not publish one: the default applies. With
	// no pod informer, /pods is scraped too.
	direct.Pods = true
	got, _ = discovery.NodeTargets(node("w2", 0, "Hostname", "w2.local"), direct)
	if len(got) != 4 || got[0].URL != "https://w2.local:10250/metrics/cadvisor" ||
		got[3].URL != "https://w2.local:10250/pods" || got[3].Kind != source.KubeletPods {
		t.Errorf("default port and pods: %+v", got)
	}

	_, err = discovery.NodeTargets(node("w3", 0), direct)
	if !errors.Is(err, discovery.ErrNoAddress) {
		t.Errorf("no address: %v", err)
	}

	// Through the API server the address does not matter, and the target
	// carries no kubelet credentials: the API server's apply.
	proxy := discovery.NodeOptions{Access: discovery.Proxy, APIServer: "https://api:6443/",
		TokenFile: "/token"}
	got, err = discovery.NodeTargets(node("w3", 0), proxy)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].URL != "https://api:6443/api/v1/nodes/w3/proxy/metrics/cadvisor" ||
		got[0].BearerTokenFile != "" {
		t.Errorf("proxy target: %+v", got[0])
	}
}

func sameTargets(t *testing.T, got, want []source.Target) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d targets, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

func TestShard(t *testing.T) {
	names := []string{"ip-10-0-1-17.ec2.internal", "worker-1", "worker-2", "gke-pool-a-x7",
		"node-000", "node-001", "node-002", "node-003", "", "kind-control-plane"}
	const count = 3
	for _, name := range names {
		h := fnv.New32a()
		h.Write([]byte(name))
		want := int(h.Sum32() % count)
		if name == "" {
			want = 0 // unscheduled pods
		}
		owners := 0
		for i := range count {
			if (discovery.Shard{Index: i, Count: count}).Owns(name) {
				owners++
				if i != want {
					t.Errorf("%q owned by shard %d, want %d", name, i, want)
				}
			}
		}
		if owners != 1 {
			t.Errorf("%q owned by %d shards", name, owners)
		}
		if !(discovery.Shard{}).Owns(name) {
			t.Errorf("the zero shard does not own %q", name)
		}
	}

	for _, bad := range []discovery.Shard{{Index: 3, Count: 3}, {Index: -1, Count: 2},
		{Index: 1, Count: 0}, {Count: -1}} {
		if err := bad.Validate(); !errors.Is(err, discovery.ErrInvalidShard) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
