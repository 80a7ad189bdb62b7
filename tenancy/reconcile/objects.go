package reconcile

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"canopy.dev/canopy/tenancy"
)

// servicePort is the port every app's Service listens on.
const servicePort = 80

// namespaceOf is the project's namespace: the one the store recorded at
// creation, so that a later change of prefix does not move projects.
func (r *Reconciler) namespaceOf(p *tenancy.Project) string {
	if p.Namespace != "" {
		return p.Namespace
	}
	return r.cfg.NamespacePrefix + p.Name
}

// projectLabels are the labels of every object of the project.
func projectLabels(p *tenancy.Project) map[string]string {
	return map[string]string{LabelManagedBy: managedByValue, LabelProject: p.Name}
}

func projectAnnotations(p *tenancy.Project) map[string]string {
	return map[string]string{AnnotationProjectID: p.ID}
}

// appLabels are the labels of an app's Deployment, Service and pods.
func appLabels(p *tenancy.Project, a *tenancy.App) map[string]string {
	l := projectLabels(p)
	l[LabelAppName] = a.Name
	return l
}

// appSelector picks an app's pods; it never changes once a Deployment exists.
func appSelector(a *tenancy.App) map[string]string {
	return map[string]string{LabelManagedBy: managedByValue, LabelAppName: a.Name}
}

func (r *Reconciler) desiredNamespace(p *tenancy.Project) *corev1ac.NamespaceApplyConfiguration {
	return corev1ac.Namespace(r.namespaceOf(p)).
		WithLabels(projectLabels(p)).
		WithAnnotations(projectAnnotations(p))
}

func (r *Reconciler) desiredQuota(p *tenancy.Project) *corev1ac.ResourceQuotaApplyConfiguration {
	return corev1ac.ResourceQuota(objectName, r.namespaceOf(p)).
		WithLabels(projectLabels(p)).
		WithAnnotations(projectAnnotations(p)).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(r.cfg.Quota.DeepCopy()))
}

func (r *Reconciler) desiredLimitRange(p *tenancy.Project) *corev1ac.LimitRangeApplyConfiguration {
	item := corev1ac.LimitRangeItem().
		WithType(corev1.LimitTypeContainer).
		WithDefault(r.cfg.LimitDefault.DeepCopy()).
		WithDefaultRequest(r.cfg.LimitDefaultRequest.DeepCopy())
	return corev1ac.LimitRange(objectName, r.namespaceOf(p)).
		WithLabels(projectLabels(p)).
		WithAnnotations(projectAnnotations(p)).
		WithSpec(corev1ac.LimitRangeSpec().WithLimits(item))
}

// desiredNetworkPolicy admits ingress to every pod of the project only from
// the project itself, the ingress controller's namespace and monitoring.
func (r *Reconciler) desiredNetworkPolicy(
	p *tenancy.Project) *networkingv1ac.NetworkPolicyApplyConfiguration {
	fromNamespace := func(ns string) *networkingv1ac.NetworkPolicyPeerApplyConfiguration {
		return networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(
			metav1ac.LabelSelector().WithMatchLabels(map[string]string{
				corev1.LabelMetadataName: ns,
			}))
	}
	rule := networkingv1ac.NetworkPolicyIngressRule().WithFrom(
		networkingv1ac.NetworkPolicyPeer().WithPodSelector(metav1ac.LabelSelector()),
		fromNamespace(r.cfg.IngressNamespace),
		fromNamespace(r.cfg.MonitoringNamespace),
	)
	return networkingv1ac.NetworkPolicy(objectName, r.namespaceOf(p)).
		WithLabels(projectLabels(p)).
		WithAnnotations(projectAnnotations(p)).
		WithSpec(networkingv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector()).
			WithPolicyTypes(networkingv1.PolicyTypeIngress).
			WithIngress(rule))
}

func (r *Reconciler) desiredDeployment(p *tenancy.Project,
	a *tenancy.App) *appsv1ac.DeploymentApplyConfiguration {
	container := corev1ac.Container().
		WithName(a.Name).
		WithImage(a.Image).
		WithPorts(corev1ac.ContainerPort().
			WithName("http").
			WithContainerPort(int32(a.TargetPort)).
			WithProtocol(corev1.ProtocolTCP))
	for _, name := range sortedKeys(a.Env) {
		container.WithEnv(corev1ac.EnvVar().WithName(name).WithValue(a.Env[name]))
	}
	template := corev1ac.PodTemplateSpec().
		WithLabels(appLabels(p, a)).
		WithSpec(corev1ac.PodSpec().WithContainers(container))
	return appsv1ac.Deployment(a.Name, r.namespaceOf(p)).
		WithLabels(appLabels(p, a)).
		WithAnnotations(projectAnnotations(p)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(int32(a.Replicas)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(appSelector(a))).
			WithTemplate(template))
}

func (r *Reconciler) desiredService(p *tenancy.Project,
	a *tenancy.App) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(a.Name, r.namespaceOf(p)).
		WithLabels(appLabels(p, a)).
		WithAnnotations(projectAnnotations(p)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(appSelector(a)).
			WithPorts(corev1ac.ServicePort().
				WithName("http").
				WithProtocol(corev1.ProtocolTCP).
				WithPort(servicePort).
				WithTargetPort(intstr.FromInt32(int32(a.TargetPort)))))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
