package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/reconcile"
)

// Settings every test reconciler runs with, unlike the defaults, so that the
// checks below prove they are applied.
var (
	testQuota = corev1.ResourceList{
		corev1.ResourceRequestsCPU:  resource.MustParse("3"),
		corev1.ResourceLimitsMemory: resource.MustParse("6Gi"),
		corev1.ResourcePods:         resource.MustParse("7"),
	}
	testLimit = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("300m"),
		corev1.ResourceMemory: resource.MustParse("256Mi"),
	}
	testRequest = corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("50m"),
		corev1.ResourceMemory: resource.MustParse("64Mi"),
	}
	testIngressNS    = "edge"
	testMonitoringNS = "observability"
)

func withTestSettings(cfg reconcile.Config) reconcile.Config {
	cfg.Quota, cfg.LimitDefault, cfg.LimitDefaultRequest = testQuota, testLimit, testRequest
	cfg.IngressNamespace, cfg.MonitoringNamespace = testIngressNS, testMonitoringNS
	return cfg
}

var managedSelector = metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=canopy"}

// verifyProject checks that the cluster holds what the project and its apps
// ask for, worked out from the spec and the settings above.
func verifyProject(ctx context.Context, cs kubernetes.Interface, p *tenancy.Project,
	apps ...*tenancy.App) error {
	nsName := "canopy-" + p.Name
	ns, err := cs.CoreV1().Namespaces().Get(ctx, nsName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get namespace: %w", err)
	}
	want := map[string]string{
		"app.kubernetes.io/managed-by": "canopy",
		"canopy.dev/project":           p.Name,
	}
	if !labels.SelectorFromSet(want).Matches(labels.Set(ns.Labels)) {
		return fmt.Errorf("namespace labels %v lack %v", ns.Labels, want)
	}
	errs := []error{
		verifyQuota(ctx, cs, nsName),
		verifyLimitRange(ctx, cs, nsName),
		verifyNetworkPolicy(ctx, cs, nsName),
	}
	for _, a := range apps {
		errs = append(errs, verifyApp(ctx, cs, nsName, a))
	}
	return errors.Join(errs...)
}

func verifyQuota(ctx context.Context, cs kubernetes.Interface, ns string) error {
	list, err := cs.CoreV1().ResourceQuotas(ns).List(ctx, managedSelector)
	if err != nil {
		return fmt.Errorf("list quotas: %w", err)
	}
	if len(list.Items) != 1 {
		return fmt.Errorf("%d managed quotas in %s, want 1", len(list.Items), ns)
	}
	return sameResources("quota hard", list.Items[0].Spec.Hard, testQuota)
}

func verifyLimitRange(ctx context.Context, cs kubernetes.Interface, ns string) error {
	list, err := cs.CoreV1().LimitRanges(ns).List(ctx, managedSelector)
	if err != nil {
		return fmt.Errorf("list limit ranges: %w", err)
	}
	if len(list.Items) != 1 || len(list.Items[0].Spec.Limits) != 1 {
		return fmt.Errorf("want one managed limit range with one item in %s, got %+v",
			ns, list.Items)
	}
	item := list.Items[0].Spec.Limits[0]
	if item.Type != corev1.LimitTypeContainer {
		return fmt.Errorf("limit range type %s, want Container", item.Type)
	}
	return errors.Join(sameResources("default limit", item.Default, testLimit),
		sameResources("default request", item.DefaultRequest, testRequest))
}

func verifyNetworkPolicy(ctx context.Context, cs kubernetes.Interface, ns string) error {
	list, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, managedSelector)
	if err != nil {
		return fmt.Errorf("list network policies: %w", err)
	}
	if len(list.Items) != 1 {
		return fmt.Errorf("%d managed network policies in %s, want 1", len(list.Items), ns)
	}
	spec := list.Items[0].Spec
	if len(spec.PodSelector.MatchLabels)+len(spec.PodSelector.MatchExpressions) != 0 {
		return fmt.Errorf("policy selects %v, want every pod", spec.PodSelector)
	}
	if !slices.Equal(spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		return fmt.Errorf("policy types %v, want [Ingress]", spec.PolicyTypes)
	}
	if len(spec.Ingress) != 1 {
		return fmt.Errorf("%d ingress rules, want 1", len(spec.Ingress))
	}
	var sameNS bool
	var fromNS []string
	for _, peer := range spec.Ingress[0].From {
		switch {
		case peer.IPBlock != nil:
			return fmt.Errorf("policy admits an IP block %v", peer.IPBlock)
		case peer.NamespaceSelector == nil && peer.PodSelector != nil &&
			len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0:
			sameNS = true
		case peer.NamespaceSelector != nil && peer.PodSelector == nil &&
			len(peer.NamespaceSelector.MatchExpressions) == 0 &&
			len(peer.NamespaceSelector.MatchLabels) == 1:
			name := peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
			fromNS = append(fromNS, name)
		default:
			return fmt.Errorf("unexpected peer %+v", peer)
		}
	}
	slices.Sort(fromNS)
	wantNS := []string{testIngressNS, testMonitoringNS}
	slices.Sort(wantNS)
	if !sameNS || !slices.Equal(fromNS, wantNS) {
		return fmt.Errorf("policy admits same namespace %t and namespaces %v, want true and %v",
			sameNS, fromNS, wantNS)
	}
	return nil
}

func verifyApp(ctx context.Context, cs kubernetes.Interface, ns string, a *tenancy.App) error {
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, a.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get deployment: %w", err)
	}
	if err := verifyDeployment(dep, a); err != nil {
		return err
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, a.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get service: %w", err)
	}
	if svc.Labels["app.kubernetes.io/managed-by"] != "canopy" {
		return fmt.Errorf("service labels %v lack managed-by", svc.Labels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 80 ||
		svc.Spec.Ports[0].TargetPort.IntValue() != a.TargetPort {
		return fmt.Errorf("service ports %+v, want 80 to %d", svc.Spec.Ports, a.TargetPort)
	}
	sel := svc.Spec.Selector
	podLabels := labels.Set(dep.Spec.Template.Labels)
	if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(podLabels) {
		return fmt.Errorf("service selector %v does not pick pods labelled %v",
			sel, dep.Spec.Template.Labels)
	}
	return nil
}

func verifyDeployment(dep *appsv1.Deployment, a *tenancy.App) error {
	if dep.Labels["app.kubernetes.io/managed-by"] != "canopy" ||
		dep.Labels["app.kubernetes.io/name"] != a.Name {
		return fmt.Errorf("deployment labels %v", dep.Labels)
	}
	if dep.Spec.Template.Labels["app.kubernetes.io/name"] != a.Name {
		return fmt.Errorf("pod labels %v lack app.kubernetes.io/name=%s",
			dep.Spec.Template.Labels, a.Name)
	}
	if dep.Spec.Replicas == nil || int(*dep.Spec.Replicas) != a.Replicas {
		return fmt.Errorf("deployment replicas %v, want %d", dep.Spec.Replicas, a.Replicas)
	}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		return fmt.Errorf("%d containers, want 1", len(cs))
	}
	c := cs[0]
	if c.Image != a.Image {
		return fmt.Errorf("image %q, want %q", c.Image, a.Image)
	}
	if len(c.Ports) != 1 || int(c.Ports[0].ContainerPort) != a.TargetPort {
		return fmt.Errorf("container ports %+v, want %d", c.Ports, a.TargetPort)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if len(env) != len(a.Env) {
		return fmt.Errorf("env %v, want %v", env, a.Env)
	}
	for k, v := range a.Env {
		if env[k] != v {
			return fmt.Errorf("env %v, want %v", env, a.Env)
		}
	}
	return nil
}

func sameResources(what string, got, want corev1.ResourceList) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s %v, want %v", what, got, want)
	}
	for name, q := range want {
		if g, ok := got[name]; !ok || g.Cmp(q) != 0 {
			return fmt.Errorf("%s %v, want %v", what, got, want)
		}
	}
	return nil
}
