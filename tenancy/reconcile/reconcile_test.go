package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/reconcile"
)

func TestNewRefusesNoCluster(t *testing.T) {
	_, err := reconcile.New(reconcile.Config{Store: newFixture(t).store})
	if !errors.Is(err, reconcile.ErrNoCluster) {
		t.Fatalf("New without a client: got %v, want ErrNoCluster", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	// A client that is never used: New only builds informers.
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("create clientset: %v", err)
	}
	st := newFixture(t).store
	tests := []struct {
		name string
		cfg  reconcile.Config
	}{
		{"no store", reconcile.Config{Client: cs}},
		{"retry delays reversed", reconcile.Config{Store: st, Client: cs,
			RetryBaseDelay: time.Minute, RetryMaxDelay: time.Second}},
		{"renew deadline past lease", reconcile.Config{Store: st, Client: cs,
			LeaderElection: reconcile.LeaderElection{Enabled: true,
				LeaseDuration: 5 * time.Second, RenewDeadline: 10 * time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := reconcile.New(tt.cfg); !errors.Is(err, tenancy.ErrInvalid) {
				t.Errorf("New: got %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := reconcile.New(reconcile.Config{Store: st, Client: cs}); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

func TestProjectAndAppsConverge(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)
	p := f.project(t, "converge")
	web := f.app(t, p, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 8080,
		Replicas: 2, Env: map[string]string{"B": "2", "A": "1"}})
	worker := f.app(t, p, tenancy.App{Name: "worker", Image: "busybox:1.36", TargetPort: 9000,
		Replicas: 1})

	var writes writeCounter
	reg := prometheus.NewRegistry()
	rc := f.config(client(t, cfg, &writes))
	rc.Registerer = reg
	r, _ := start(t, rc)

	got := f.waitStatus(t, p.ID, tenancy.StatusReady)
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, web, worker) })
	if got.ObservedGeneration != p.Generation {
		t.Errorf("observed generation %d, want %d", got.ObservedGeneration, p.Generation)
	}
	c := condition(got.Conditions, reconcile.ConditionClusterReady)
	if c == nil || c.Status != "True" {
		t.Errorf("ClusterReady condition %+v, want True", c)
	}

	// Nothing runs pods in envtest: until the Deployment reports them, the
	// app waits for its replicas.
	waitApp(t, f, web, func(a *tenancy.App) error {
		if a.Status != tenancy.StatusProvisioning || a.AvailableReplicas != 0 {
			return fmt.Errorf("app %s (%s) with %d available, want provisioning with 0",
				a.Status, a.Reason, a.AvailableReplicas)
		}
		return nil
	})
	rollOut(t, cs, p, web.Name)
	waitApp(t, f, web, func(a *tenancy.App) error {
		if a.Status != tenancy.StatusReady || a.AvailableReplicas != web.Replicas {
			return fmt.Errorf("app %s with %d available, want ready with %d",
				a.Status, a.AvailableReplicas, web.Replicas)
		}
		c := condition(a.Conditions, reconcile.ConditionAvailable)
		if c == nil || c.Status != "True" {
			return fmt.Errorf("Available condition %+v, want True", c)
		}
		return nil
	})

	// A converged project costs no writes, however often it is looked at.
	before := writes.n.Load()
	versions := resourceVersions(t, cs, "canopy-"+p.Name)
	passes := metricSum(t, reg, "canopy_reconcile_passes_total")
	eventually(t, 10*time.Second, func() error {
		r.ProjectChanged(p.ID)
		if got := metricSum(t, reg, "canopy_reconcile_passes_total"); got < passes+5 {
			return fmt.Errorf("%g passes since convergence, want 5", got-passes)
		}
		return nil
	})
	if n := writes.n.Load() - before; n != 0 {
		t.Errorf("%d writes after convergence, want none", n)
	}
	if after := resourceVersions(t, cs, "canopy-"+p.Name); !equalMaps(after, versions) {
		t.Errorf("objects changed after convergence:\n before %v\n after  %v", versions, after)
	}

	// A PATCH of image and replicas rolls out.
	image, replicas := "nginx:1.28", 3
	patched, err := f.store.UpdateAppSpec(ctx, p.ID, web.ID, &image, &replicas)
	if err != nil {
		t.Fatalf("update app: %v", err)
	}
	r.ProjectChanged(p.ID)
	eventually(t, 10*time.Second, func() error {
		return verifyProject(ctx, cs, p, patched, worker)
	})
	waitApp(t, f, web, func(a *tenancy.App) error {
		if a.ObservedGeneration != patched.Generation || a.Status != tenancy.StatusProvisioning {
			return fmt.Errorf("app %s at generation %d, want provisioning at %d",
				a.Status, a.ObservedGeneration, patched.Generation)
		}
		return nil
	})
	rollOut(t, cs, p, web.Name)
	waitApp(t, f, web, func(a *tenancy.App) error {
		if a.Status != tenancy.StatusReady || a.AvailableReplicas != replicas {
			return fmt.Errorf("app %s with %d available, want ready with %d",
				a.Status, a.AvailableReplicas, replicas)
		}
		return nil
	})
}

func TestDriftIsRestored(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)
	p := f.project(t, "drift")
	web := f.app(t, p, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 8080,
		Replicas: 1})
	start(t, f.config(client(t, cfg, nil)))
	f.waitStatus(t, p.ID, tenancy.StatusReady)
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, web) })
	ns := "canopy-" + p.Name

	// Someone deletes the Service, edits the image and raises the quota.
	if err := cs.CoreV1().Services(ns).Delete(ctx, web.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete service: %v", err)
	}
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, web.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment: %v", err)
	}
	dep.Spec.Template.Spec.Containers[0].Image = "evil:latest"
	_, err = cs.AppsV1().Deployments(ns).Update(ctx, dep,
		metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatalf("edit deployment: %v", err)
	}
	quotas, err := cs.CoreV1().ResourceQuotas(ns).List(ctx, managedSelector)
	if err != nil || len(quotas.Items) != 1 {
		t.Fatalf("list quotas: %v (%d)", err, len(quotas.Items))
	}
	q := quotas.Items[0]
	q.Spec.Hard[corev1.ResourcePods] = resource.MustParse("500")
	_, err = cs.CoreV1().ResourceQuotas(ns).Update(ctx, &q,
		metav1.UpdateOptions{FieldManager: "kubectl-edit"})
	if err != nil {
		t.Fatalf("edit quota: %v", err)
	}

	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, web) })
}

func TestNeverAdopts(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)

	// A namespace of the project's name that Canopy does not manage.
	taken := f.project(t, "taken")
	foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "canopy-" + taken.Name, Labels: map[string]string{"team": "someone-else"}}}
	foreign, err := cs.CoreV1().Namespaces().Create(ctx, foreign, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create foreign namespace: %v", err)
	}

	// A managed namespace that another Canopy's project owns.
	twin := f.project(t, "elsewhere")
	elsewhere := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: "canopy-" + twin.Name,
		Labels: map[string]string{
			"app.kubernetes.io/managed-by": "canopy", "canopy.dev/project": twin.Name},
		Annotations: map[string]string{"canopy.dev/project-id": "another-canopy-project"},
	}}
	elsewhere, err = cs.CoreV1().Namespaces().Create(ctx, elsewhere, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create other project's namespace: %v", err)
	}

	// A Deployment of an app's name, made by hand inside a managed namespace.
	p := f.project(t, "adopt")
	mine := f.app(t, p, tenancy.App{Name: "mine", Image: "nginx:1.27", TargetPort: 80,
		Replicas: 1})
	theirs := f.app(t, p, tenancy.App{Name: "theirs", Image: "nginx:1.27", TargetPort: 80,
		Replicas: 1})
	r, _ := start(t, f.config(client(t, cfg, nil)))
	f.waitStatus(t, p.ID, tenancy.StatusReady)
	adoptNS := "canopy-" + p.Name
	handMade := deployment(adoptNS, "other", "someone/else:1")
	handMade.Name = theirs.Name
	// The reconciler may have created it already; then delete and remake it.
	_ = cs.AppsV1().Deployments(adoptNS).Delete(ctx, theirs.Name, metav1.DeleteOptions{})
	eventually(t, 10*time.Second, func() error {
		_, err := cs.AppsV1().Deployments(adoptNS).Create(ctx, handMade,
			metav1.CreateOptions{})
		return err
	})
	r.ProjectChanged(p.ID)

	got := f.waitStatus(t, taken.ID, tenancy.StatusFailed)
	if !strings.Contains(got.Reason, "not managed by Canopy") {
		t.Errorf("failed project reason %q does not say why", got.Reason)
	}
	got = f.waitStatus(t, twin.ID, tenancy.StatusFailed)
	if !strings.Contains(got.Reason, "another Canopy project") {
		t.Errorf("failed project reason %q does not say why", got.Reason)
	}
	waitApp(t, f, theirs, func(a *tenancy.App) error {
		if a.Status != tenancy.StatusFailed || !strings.Contains(a.Reason, "not managed") {
			return fmt.Errorf("app %s (%s), want failed as not managed", a.Status, a.Reason)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, mine) })

	// Neither object was touched, not even by a no-op write.
	ns, err := cs.CoreV1().Namespaces().Get(ctx, foreign.Name, metav1.GetOptions{})
	if err != nil || ns.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("foreign namespace changed: %v, version %s then %s",
			err, foreign.ResourceVersion, ns.ResourceVersion)
	}
	dep, err := cs.AppsV1().Deployments(adoptNS).Get(ctx, theirs.Name, metav1.GetOptions{})
	if err != nil || dep.Spec.Template.Spec.Containers[0].Image != "someone/else:1" ||
		len(dep.Labels) != 0 {
		t.Errorf("hand-made deployment changed: %v %+v", err, dep.ObjectMeta.Labels)
	}

	// Deleting a failed project forgets it and leaves the namespace be.
	for _, failed := range []struct {
		project *tenancy.Project
		ns      *corev1.Namespace
	}{{taken, foreign}, {twin, elsewhere}} {
		if err := f.store.MarkProjectDeleting(ctx, failed.project.ID); err != nil {
			t.Fatalf("mark deleting: %v", err)
		}
		r.ProjectChanged(failed.project.ID)
		f.waitGone(t, failed.project.ID)
		ns, err := cs.CoreV1().Namespaces().Get(ctx, failed.ns.Name, metav1.GetOptions{})
		if err != nil || ns.ResourceVersion != failed.ns.ResourceVersion {
			t.Errorf("namespace %s touched: %v, version %s then %s", failed.ns.Name, err,
				failed.ns.ResourceVersion, ns.ResourceVersion)
		}
	}
}

func TestDeleteAppAndProject(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)
	p := f.project(t, "remove")
	web := f.app(t, p, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 80, Replicas: 1})
	api := f.app(t, p, tenancy.App{Name: "api", Image: "nginx:1.27", TargetPort: 81, Replicas: 1})
	r, _ := start(t, f.config(client(t, cfg, nil)))
	f.waitStatus(t, p.ID, tenancy.StatusReady)
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, web, api) })
	ns := "canopy-" + p.Name

	// An app marked deleting loses its objects, then its row.
	if err := f.store.MarkAppDeleting(ctx, p.ID, web.ID); err != nil {
		t.Fatalf("mark app deleting: %v", err)
	}
	r.ProjectChanged(p.ID)
	eventually(t, 10*time.Second, func() error {
		if _, err := f.store.AppByID(ctx, p.ID, web.ID); !errors.Is(err, tenancy.ErrNotFound) {
			return fmt.Errorf("app still stored (%v)", err)
		}
		return nil
	})
	_, errDep := cs.AppsV1().Deployments(ns).Get(ctx, web.Name, metav1.GetOptions{})
	_, errSvc := cs.CoreV1().Services(ns).Get(ctx, web.Name, metav1.GetOptions{})
	if !apierrors.IsNotFound(errDep) || !apierrors.IsNotFound(errSvc) {
		t.Errorf("deleted app's objects remain: %v, %v", errDep, errSvc)
	}
	if err := verifyApp(ctx, cs, ns, api); err != nil {
		t.Errorf("the other app suffered: %v", err)
	}

	// A project marked deleting stays deleting while its namespace terminates.
	if err := f.store.MarkProjectDeleting(ctx, p.ID); err != nil {
		t.Fatalf("mark project deleting: %v", err)
	}
	r.ProjectChanged(p.ID)
	eventually(t, 10*time.Second, func() error {
		n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil || n.DeletionTimestamp == nil {
			return fmt.Errorf("namespace not terminating (%v)", err)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // passes happen; the project must wait
	if got := f.getProject(t, p.ID); got.Status != tenancy.StatusDeleting {
		t.Errorf("project %s while its namespace terminates, want deleting", got.Status)
	}
	finalizeNamespace(t, cs, ns)
	f.waitGone(t, p.ID)
}

// condition returns the condition of type t, or nil.
func condition(cs []tenancy.Condition, t string) *tenancy.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

func waitApp(t *testing.T, f *fixture, a *tenancy.App, check func(*tenancy.App) error) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		got, err := f.store.AppByID(context.Background(), a.ProjectID, a.ID)
		if err != nil {
			return err
		}
		return check(got)
	})
}

// rollOut plays the Deployment controller, which envtest lacks: it reports
// every replica of the current spec updated and available.
func rollOut(t *testing.T, cs kubernetes.Interface, p *tenancy.Project, name string) {
	t.Helper()
	ctx := context.Background()
	deps := cs.AppsV1().Deployments("canopy-" + p.Name)
	eventually(t, 10*time.Second, func() error {
		dep, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n := *dep.Spec.Replicas
		now := metav1.Now()
		dep.Status = appsv1.DeploymentStatus{
			ObservedGeneration: dep.Generation,
			Replicas:           n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason:         "MinimumReplicasAvailable",
				Message:        "Deployment has minimum availability.",
				LastUpdateTime: now, LastTransitionTime: now,
			}},
		}
		_, err = deps.UpdateStatus(ctx, dep, metav1.UpdateOptions{})
		return err
	})
}

// resourceVersions lists the version of every managed object in ns.
func resourceVersions(t *testing.T, cs kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	out["namespace"] = n.ResourceVersion
	add := func(kind string, items []metav1.Object, err error) {
		if err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		for _, o := range items {
			out[kind+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	quotas, err := cs.CoreV1().ResourceQuotas(ns).List(ctx, managedSelector)
	add("quota", objects(quotas.Items), err)
	lrs, err := cs.CoreV1().LimitRanges(ns).List(ctx, managedSelector)
	add("limitrange", objects(lrs.Items), err)
	nps, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, managedSelector)
	add("networkpolicy", objects(nps.Items), err)
	deps, err := cs.AppsV1().Deployments(ns).List(ctx, managedSelector)
	add("deployment", objects(deps.Items), err)
	svcs, err := cs.CoreV1().Services(ns).List(ctx, managedSelector)
	add("service", objects(svcs.Items), err)
	return out
}

func objects[T any, PT interface {
	*T
	metav1.Object
}](items []T) []metav1.Object {
	out := make([]metav1.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// deployment is a minimal Deployment that nobody labelled for Canopy.
func deployment(ns, name, image string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "main", Image: image},
				}},
			},
		},
	}
}
