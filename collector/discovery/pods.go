package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"canopy.dev/canopy/collector/source"
)

// AppLabel names a pod's app when it is set.
const AppLabel = "app.kubernetes.io/name"

// podTemplateHashLabel is set by the Deployment controller on its
// ReplicaSets' pods; the ReplicaSet is named DEPLOYMENT-HASH.
const podTemplateHashLabel = "pod-template-hash"

// ErrInvalidPodList means a kubelet /pods body is not a JSON v1.PodList.
var ErrInvalidPodList = errors.New("invalid pod list")

// Pods turns the Pods of a Pod informer into source pods.
type Pods struct {
	lister corelisters.PodLister
	synced cache.InformerSynced
	shard  Shard
}

// NewPods registers a Pod informer on factory (start the factory after) and
// returns the pod source. The informer keeps only the fields PodFromAPI
// reads, which matters at 100,000 pods.
func NewPods(factory informers.SharedInformerFactory, shard Shard) (*Pods, error) {
	if err := shard.Validate(); err != nil {
		return nil, fmt.Errorf("create pod discovery: %w", err)
	}
	informer := factory.Core().V1().Pods()
	if err := informer.Informer().SetTransform(trimPod); err != nil {
		return nil, fmt.Errorf("set pod transform: %w", err)
	}
	return &Pods{
		lister: informer.Lister(), synced: informer.Informer().HasSynced, shard: shard,
	}, nil
}

// HasSynced reports whether the informer has listed the pods once.
func (p *Pods) HasSynced() bool { return p.synced() }

// List returns the pods on the nodes this shard owns (unscheduled pods go to
// shard 0).
func (p *Pods) List() ([]source.Pod, error) {
	pods, err := p.lister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	out := make([]source.Pod, 0, len(pods))
	for _, pod := range pods {
		if p.shard.Owns(pod.Spec.NodeName) {
			out = append(out, PodFromAPI(pod))
		}
	}
	return out, nil
}

// DecodePodList reads a kubelet /pods answer (a JSON v1.PodList). The node of
// a pod that does not name one is taken from node, the target it came from.
func DecodePodList(body []byte, node string) ([]source.Pod, error) {
	var list corev1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode pod list: %w: %w", ErrInvalidPodList, err)
	}
	if list.Kind != "" && list.Kind != "PodList" {
		return nil, fmt.Errorf("decode pod list: kind is %q: %w", list.Kind, ErrInvalidPodList)
	}
	out := make([]source.Pod, 0, len(list.Items))
	for i := range list.Items {
		p := PodFromAPI(&list.Items[i])
		if p.Node == "" {
			p.Node = node
		}
		out = append(out, p)
	}
	return out, nil
}

// PodFromAPI converts a Pod. Requests and limits are summed over the spec's
// containers (not init containers: they do not run beside them); restarts
// are summed over the containers' statuses.
func PodFromAPI(pod *corev1.Pod) source.Pod {
	p := source.Pod{
		Namespace:   pod.Namespace,
		Name:        pod.Name,
		UID:         string(pod.UID),
		Node:        pod.Spec.NodeName,
		App:         AppName(pod),
		Phase:       string(pod.Status.Phase),
		HostNetwork: pod.Spec.HostNetwork,
	}
	if p.Phase == "" {
		p.Phase = string(corev1.PodUnknown)
	}
	for _, c := range pod.Spec.Containers {
		p.CPURequestCores += c.Resources.Requests.Cpu().AsApproximateFloat64()
		p.CPULimitCores += c.Resources.Limits.Cpu().AsApproximateFloat64()
		p.MemoryRequestBytes += c.Resources.Requests.Memory().AsApproximateFloat64()
		p.MemoryLimitBytes += c.Resources.Limits.Memory().AsApproximateFloat64()
	}
	for _, s := range pod.Status.ContainerStatuses {
		p.Restarts += int64(s.RestartCount)
	}
	return p
}

// AppName is the pod's app: label app.kubernetes.io/name, else the name of the
// workload that owns it (the Deployment for a ReplicaSet's pod), else the pod's
// own name.
func AppName(pod *corev1.Pod) string {
	if app := pod.Labels[AppLabel]; app != "" {
		return app
	}
	owner := controllerOf(pod.OwnerReferences)
	if owner == nil {
		return pod.Name
	}
	if owner.Kind == "ReplicaSet" {
		return deploymentOf(owner.Name, pod.Labels[podTemplateHashLabel])
	}
	return owner.Name
}

// controllerOf returns the controlling owner, else the first owner.
func controllerOf(refs []metav1.OwnerReference) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller {
			return &refs[i]
		}
	}
	if len(refs) > 0 {
		return &refs[0]
	}
	return nil
}

// deploymentOf strips the pod-template-hash suffix from a ReplicaSet name.
// Without the hash label the ReplicaSet is taken to be its own workload.
func deploymentOf(replicaSet, hash string) string {
	if hash == "" {
		return replicaSet
	}
	if name, ok := strings.CutSuffix(replicaSet, "-"+hash); ok && name != "" {
		return name
	}
	return replicaSet
}

// trimPod keeps only what PodFromAPI reads.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: pass it through
	}
	containers := make([]corev1.Container, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		containers[i] = corev1.Container{Name: c.Name, Resources: c.Resources}
	}
	statuses := make([]corev1.ContainerStatus, len(pod.Status.ContainerStatuses))
	for i, s := range pod.Status.ContainerStatuses {
		statuses[i] = corev1.ContainerStatus{Name: s.Name, RestartCount: s.RestartCount}
	}
	meta := metaTrim(pod.ObjectMeta)
	meta.Labels = nil
	for _, key := range []string{AppLabel, podTemplateHashLabel} {
		if v, ok := pod.Labels[key]; ok {
			if meta.Labels == nil {
				meta.Labels = make(map[string]string, 2)
			}
			meta.Labels[key] = v
		}
	}
	return &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: meta,
		Spec: corev1.PodSpec{
			NodeName:    pod.Spec.NodeName,
			HostNetwork: pod.Spec.HostNetwork,
			Containers:  containers,
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, ContainerStatuses: statuses},
	}, nil
}

// metaTrim keeps the identity, labels and owners of an object; annotations
// and managed fields can be large and are never read.
func metaTrim(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		Labels:            m.Labels,
		OwnerReferences:   m.OwnerReferences,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}
