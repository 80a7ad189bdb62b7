package discovery_test

import (
	"encoding/json"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/source"
)

func controller(kind, name string) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name,
		UID: types.UID("uid-" + name), Controller: &yes}}
}

func TestAppName(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		owners []metav1.OwnerReference
		want   string
	}{
		{"label wins", map[string]string{discovery.AppLabel: "shop",
			"pod-template-hash": "7d4b9c"}, controller("ReplicaSet", "web-7d4b9c"), "shop"},
		{"replicaset to deployment", map[string]string{"pod-template-hash": "7d4b9c"},
			controller("ReplicaSet", "web-api-7d4b9c"), "web-api"},
		{"replicaset without hash label", nil, controller("ReplicaSet", "bare-rs"), "bare-rs"},
		{"hash not a suffix", map[string]string{"pod-template-hash": "zzz"},
			controller("ReplicaSet", "web-7d4b9c"), "web-7d4b9c"},
		{"statefulset", nil, controller("StatefulSet", "db"), "db"},
		{"daemonset", nil, controller("DaemonSet", "agent"), "agent"},
		{"no owner", nil, nil, "lonely-pod"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lonely-pod",
				Labels: c.labels, OwnerReferences: c.owners}}
			if got := discovery.AppName(pod); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func resources(cpuReq, cpuLim, memReq, memLim string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{},
		Limits: corev1.ResourceList{}}
	set := func(l corev1.ResourceList, name corev1.ResourceName, v string) {
		if v != "" {
			l[name] = resource.MustParse(v)
		}
	}
	set(r.Requests, corev1.ResourceCPU, cpuReq)
	set(r.Limits, corev1.ResourceCPU, cpuLim)
	set(r.Requests, corev1.ResourceMemory, memReq)
	set(r.Limits, corev1.ResourceMemory, memLim)
	return r
}

// shopPod has two app containers and an init container, whose requests do
// not count.
func shopPod() corev1.Pod {
	return corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "canopy-shop", Name: "web-7d4b9c-x2x9z",
			UID: "9f0e", Labels: map[string]string{"pod-template-hash": "7d4b9c"},
			OwnerReferences: controller("ReplicaSet", "web-7d4b9c")},
		Spec: corev1.PodSpec{
			NodeName: "worker-1",
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox",
				Resources: resources("4", "", "4Gi", "")}},
			Containers: []corev1.Container{
				{Name: "app", Image: "shop:1", Resources: resources("250m", "1", "128Mi", "256Mi")},
				{Name: "proxy", Image: "envoy", Resources: resources("50m", "", "64Mi", "64Mi")},
			},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", RestartCount: 3}, {Name: "proxy", RestartCount: 1},
			}},
	}
}

// shopWant is shopPod worked out by hand: 0.25+0.05 cores requested, only
// app has a CPU limit, 128+64 MiB requested, 256+64 MiB limited, 3+1 restarts.
var shopWant = source.Pod{
	Namespace: "canopy-shop", Name: "web-7d4b9c-x2x9z", UID: "9f0e", Node: "worker-1",
	App: "web", Phase: "Running", Restarts: 4,
	CPURequestCores: 0.3, CPULimitCores: 1,
	MemoryRequestBytes: 192 << 20, MemoryLimitBytes: 320 << 20,
}

func closeEnough(a, b float64) bool { d := a - b; return d < 1e-9 && d > -1e-9 }

func samePod(t *testing.T, got, want source.Pod) {
	t.Helper()
	if !closeEnough(got.CPURequestCores, want.CPURequestCores) ||
		!closeEnough(got.CPULimitCores, want.CPULimitCores) {
		t.Errorf("cpu: got %v/%v, want %v/%v", got.CPURequestCores, got.CPULimitCores,
			want.CPURequestCores, want.CPULimitCores)
	}
	got.CPURequestCores, got.CPULimitCores = want.CPURequestCores, want.CPULimitCores
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestPodFromAPI(t *testing.T) {
	pod := shopPod()
	samePod(t, discovery.PodFromAPI(&pod), shopWant)

	hostPod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kp"},
		Spec: corev1.PodSpec{HostNetwork: true}}
	got := discovery.PodFromAPI(&hostPod)
	if !got.HostNetwork || got.Phase != "Unknown" || got.App != "kp" {
		t.Errorf("host-network pod: %+v", got)
	}
}

func TestDecodePodList(t *testing.T) {
	unscheduled := shopPod()
	unscheduled.Spec.NodeName = ""
	list := corev1.PodList{
		TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		Items:    []corev1.Pod{shopPod(), unscheduled},
	}
	body, err := json.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	got, err := discovery.DecodePodList(body, "kubelet-node")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d pods", len(got))
	}
	samePod(t, got[0], shopWant)
	want := shopWant
	want.Node = "kubelet-node" // the kubelet that answered
	samePod(t, got[1], want)

	for name, bad := range map[string]string{
		"not json":   "<html>",
		"wrong kind": `{"kind":"NodeList","items":[]}`,
		"bad items":  `{"kind":"PodList","items":{}}`,
	} {
		if _, err := discovery.DecodePodList([]byte(bad), "n"); !errors.Is(err,
			discovery.ErrInvalidPodList) {
			t.Errorf("%s: err %v, want ErrInvalidPodList", name, err)
		}
	}
}

func FuzzDecodePodList(f *testing.F) {
	pod := shopPod()
	seed, _ := json.Marshal(corev1.PodList{Items: []corev1.Pod{pod}})
	f.Add(seed)
	f.Add([]byte(`{"kind":"PodList","items":[]}`))
	f.Add([]byte(`{"items":[{"metadata":{"name":"p","ownerReferences":[{"kind":"ReplicaSet"}]}}]}`))
	f.Add([]byte(`{"items":[{"spec":{"containers":[{"resources":{"requests":{"cpu":"1e3"}}}]}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		pods, err := discovery.DecodePodList(body, "n")
		if err != nil {
			if !errors.Is(err, discovery.ErrInvalidPodList) || pods != nil {
				t.Fatalf("error %v not ErrInvalidPodList, or pods returned", err)
			}
			return
		}
		for _, p := range pods {
			if p.Node == "" || p.Phase == "" {
				t.Fatalf("pod without node or phase: %+v", p)
			}
		}
	})
}
