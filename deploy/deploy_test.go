package deploy

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"canopy.dev/canopy/internal/testenv"
)

// operatorModule holds the ServiceMonitor CRD, read from the module cache so
// that the test checks the manifest against the real schema.
const operatorModule = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// render builds one kustomization with the kustomize Go API.
func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("render %s: %v", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range m.Resources() {
		obj, err := r.Map()
		if err != nil {
			t.Fatalf("render %s: %v", dir, err)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func as[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatalf("convert %s/%s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

func TestOverlaysRenderSafely(t *testing.T) {
	cases := []struct {
		dir        string
		replicas   int32
		pdb        bool
		nodesProxy bool
	}{
		{dir: "overlays/dev", replicas: 1},
		{dir: "overlays/prod", replicas: 2, pdb: true},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			objs := render(t, c.dir)
			d := find(objs, "Deployment", "canopy")
			if d == nil {
				t.Fatal("no Deployment canopy")
			}
			dep := as[appsv1.Deployment](t, d)
			if got := *dep.Spec.Replicas; got < c.replicas {
				t.Errorf("replicas = %d, want at least %d", got, c.replicas)
			}
			checkHardened(t, dep)
			if got := find(objs, "PodDisruptionBudget", "canopy") != nil; got != c.pdb {
				t.Errorf("PodDisruptionBudget present = %v, want %v", got, c.pdb)
			}
			checkRBAC(t, objs, c.nodesProxy)
		})
	}
}

// checkHardened asserts the pod runs non-root on a read-only root with no
// capabilities, and has probes and resource requests.
func checkHardened(t *testing.T, dep *appsv1.Deployment) {
	t.Helper()
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil ||
		!*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod does not require runAsNonRoot")
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("root filesystem is not read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("privilege escalation is not disabled")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("capabilities are not dropped")
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Error("readiness or liveness probe missing")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("resource requests missing")
	}
}

// checkRBAC asserts there is no wildcard and nodes/proxy only where wanted.
func checkRBAC(t *testing.T, objs []*unstructured.Unstructured, wantProxy bool) {
	t.Helper()
	gotProxy := false
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
			continue
		}
		role := as[rbacv1.ClusterRole](t, o)
		for _, r := range role.Rules {
			for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs} {
				if slices.Contains(list, "*") {
					t.Errorf("%s %s has a wildcard rule: %+v", o.GetKind(), o.GetName(), r)
				}
			}
			if slices.Contains(r.Resources, "nodes/proxy") {
				gotProxy = true
			}
		}
	}
	if gotProxy != wantProxy {
		t.Errorf("nodes/proxy granted = %v, want %v", gotProxy, wantProxy)
	}
}

func TestKubeletProxyComponentGrantsNodesProxy(t *testing.T) {
	objs := render(t, "overlays/dev-proxy")
	checkRBAC(t, objs, true)
	dep := as[appsv1.Deployment](t, find(objs, "Deployment", "canopy"))
	found := false
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		found = found || (e.Name == "CANOPY_KUBELET_ACCESS" && e.Value == "proxy")
	}
	if !found {
		t.Error("component does not switch CANOPY_KUBELET_ACCESS to proxy")
	}
}

// TestOverlaysApplyToAPIServer applies every rendered object with a
// server-side dry run to a real kube-apiserver that has the ServiceMonitor CRD.
func TestOverlaysApplyToAPIServer(t *testing.T) {
	assets := testenv.KubeAssets(t)
	crd := serviceMonitorCRD(t)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDInstallOptions:     envtest.CRDInstallOptions{Paths: []string{crd}},
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	dyn := dynamic.NewForConfigOrDie(cfg)
	dc := discovery.NewDiscoveryClientForConfigOrDie(cfg)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	ctx := context.Background()

	// The namespace must exist for namespaced objects, even in a dry run.
	nsGVR := mustMapping(t, mapper, "", "v1", "Namespace")
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": "canopy-system"},
	}}
	if _, err := dyn.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}

	for _, overlay := range []string{"overlays/dev", "overlays/prod", "overlays/dev-proxy"} {
		for _, obj := range render(t, overlay) {
			gv := strings.SplitN(obj.GetAPIVersion(), "/", 2)
			group, version := "", gv[0]
			if len(gv) == 2 {
				group, version = gv[0], gv[1]
			}
			gvr := mustMapping(t, mapper, group, version, obj.GetKind())
			body, err := json.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(gvr)
			if obj.GetNamespace() != "" {
				ri = dyn.Resource(gvr).Namespace(obj.GetNamespace())
			}
			_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{
				FieldManager: "canopy-deploy-test",
				DryRun:       []string{metav1.DryRunAll},
				Force:        ptr(true),
			})
			if err != nil {
				t.Errorf("%s: dry-run apply %s %s/%s: %v", overlay, obj.GetKind(),
					obj.GetNamespace(), obj.GetName(), err)
			}
		}
	}
}

func mustMapping(t *testing.T, m *restmapper.DeferredDiscoveryRESTMapper, group, version,
	kind string) (gvr schemaGVR) {
	t.Helper()
	mapping, err := m.RESTMapping(schemaGK(group, kind), version)
	if err != nil {
		t.Fatalf("map %s/%s %s: %v", group, version, kind, err)
	}
	return mapping.Resource
}

// serviceMonitorCRD returns the path of the ServiceMonitor CRD in the module cache.
func serviceMonitorCRD(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", operatorModule).Output()
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("download %s: %v", operatorModule, err)
		}
		t.Skipf("cannot download %s for the ServiceMonitor CRD: %v", operatorModule, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("read go mod download answer: %v", err)
	}
	return filepath.Join(mod.Dir, "example", "prometheus-operator-crd",
		"monitoring.coreos.com_servicemonitors.yaml")
}

func ptr[T any](v T) *T { return &v }

type schemaGVR = schema.GroupVersionResource

func schemaGK(group, kind string) schema.GroupKind {
	return schema.GroupKind{Group: group, Kind: kind}
}
