package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
)

// ErrNotManaged means an object of the name Canopy needs exists without the
// managed-by=canopy label, so Canopy leaves it alone and reports a failure.
var ErrNotManaged = errors.New("exists and is not managed by Canopy")

// ErrOtherProject means a managed namespace of the project's name carries
// another project's ID: another Canopy, or a project since recreated, owns it.
var ErrOtherProject = errors.New("belongs to another Canopy project")

// kind gives the generic steps one object kind: read from the cache or the
// API server, extract the fields Canopy applied, apply and delete.
type kind[T metav1.Object, AC any] struct {
	name    string
	cached  func(ns, name string) (T, error)
	live    func(ctx context.Context, ns, name string) (T, error)
	extract func(obj T, manager string) (AC, error)
	apply   func(ctx context.Context, ns string, ac AC, o metav1.ApplyOptions) (T, error)
	delete  func(ctx context.Context, ns, name string, o metav1.DeleteOptions) error
}

var applyOptions = metav1.ApplyOptions{FieldManager: FieldManager, Force: true}

// ensure makes one object match desired. It reads the object from the cache,
// or from the API server when the cache has not seen it; refuses an object
// Canopy does not manage; and applies desired only when the fields Canopy
// owns differ from it, so a pass over a converged project writes nothing.
// A field changed by hand moves to another manager, which shows as a
// difference and is forced back.
func ensure[T metav1.Object, AC any](ctx context.Context, r *Reconciler, k kind[T, AC],
	ns, name string, desired AC) (T, error) {
	var zero T
	cur, err := current(ctx, k, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		// Absent: create it below.
	case err != nil:
		return zero, err
	case !managed(cur):
		return zero, fmt.Errorf("%s %s/%s %w", k.name, ns, name, ErrNotManaged)
	default:
		// TODO(reconcile): extraction costs most of a converged pass (about
		// 2ms for a project with three apps); remember the verdict per
		// resourceVersion if resyncs of many projects ever cost too much.
		owned, err := k.extract(cur, FieldManager)
		if err != nil {
			return zero, fmt.Errorf("extract %s namespace=%q name=%q: %w", k.name, ns, name, err)
		}
		if sameFields(owned, desired) {
			return cur, nil
		}
	}

	obj, err := k.apply(ctx, ns, desired, applyOptions)
	if err != nil {
		return zero, fmt.Errorf("apply %s namespace=%q name=%q: %w", k.name, ns, name, err)
	}
	r.metrics.wrote(k.name, "apply")
	r.log.Info("applied object", "kind", k.name, "namespace", ns, "name", name)
	return obj, nil
}

// current reads an object from the cache, then from the API server: the cache
// may lag behind a write, and it never holds objects Canopy does not manage.
func current[T metav1.Object, AC any](ctx context.Context, k kind[T, AC],
	ns, name string) (T, error) {
	obj, err := k.cached(ns, name)
	if err == nil {
		return obj, nil
	}
	if !apierrors.IsNotFound(err) {
		return obj, fmt.Errorf("read cached %s namespace=%q name=%q: %w", k.name, ns, name, err)
	}
	obj, err = k.live(ctx, ns, name)
	if err != nil && !apierrors.IsNotFound(err) {
		return obj, fmt.Errorf("get %s namespace=%q name=%q: %w", k.name, ns, name, err)
	}
	return obj, err
}

// remove deletes one managed object and reports whether it is gone. It reads
// the API server, not the cache, because the caller forgets the object in the
// store once it is gone. An object Canopy does not manage counts as gone: it
// is not Canopy's to delete.
func remove[T metav1.Object, AC any](ctx context.Context, r *Reconciler, k kind[T, AC],
	ns, name string) (bool, error) {
	obj, err := k.live(ctx, ns, name)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get %s namespace=%q name=%q: %w", k.name, ns, name, err)
	case !managed(obj):
		r.log.Warn("leaving unmanaged object", "kind", k.name, "namespace", ns, "name", name)
		return true, nil
	case obj.GetDeletionTimestamp() != nil:
		return false, nil
	}

	uid := obj.GetUID()
	err = k.delete(ctx, ns, name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s namespace=%q name=%q: %w", k.name, ns, name, err)
	}
	r.metrics.wrote(k.name, "delete")
	r.log.Info("deleted object", "kind", k.name, "namespace", ns, "name", name)

	// Most objects are gone at once; one with finalizers is waited for.
	_, err = k.live(ctx, ns, name)
	return apierrors.IsNotFound(err), nil
}

// managed reports whether Canopy may change obj.
func managed(obj metav1.Object) bool {
	return obj.GetLabels()[LabelManagedBy] == managedByValue
}

// sameFields compares two apply configurations through their JSON, which
// normalises quantities and leaves out unset fields on both sides.
func sameFields(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	var va, vb any
	if json.Unmarshal(ja, &va) != nil || json.Unmarshal(jb, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func (r *Reconciler) quotaKind() kind[*corev1.ResourceQuota,
	*corev1ac.ResourceQuotaApplyConfiguration] {
	c := r.client.CoreV1()
	return kind[*corev1.ResourceQuota, *corev1ac.ResourceQuotaApplyConfiguration]{
		name: "ResourceQuota",
		cached: func(ns, name string) (*corev1.ResourceQuota, error) {
			return r.cache.quotas.ResourceQuotas(ns).Get(name)
		},
		live: func(ctx context.Context, ns, name string) (*corev1.ResourceQuota, error) {
			return c.ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
		},
		extract: corev1ac.ExtractResourceQuota,
		apply: func(ctx context.Context, ns string, ac *corev1ac.ResourceQuotaApplyConfiguration,
			o metav1.ApplyOptions) (*corev1.ResourceQuota, error) {
			return c.ResourceQuotas(ns).Apply(ctx, ac, o)
		},
	}
}

func (r *Reconciler) limitRangeKind() kind[*corev1.LimitRange,
	*corev1ac.LimitRangeApplyConfiguration] {
	c := r.client.CoreV1()
	return kind[*corev1.LimitRange, *corev1ac.LimitRangeApplyConfiguration]{
		name: "LimitRange",
		cached: func(ns, name string) (*corev1.LimitRange, error) {
			return r.cache.limitRanges.LimitRanges(ns).Get(name)
		},
		live: func(ctx context.Context, ns, name string) (*corev1.LimitRange, error) {
			return c.LimitRanges(ns).Get(ctx, name, metav1.GetOptions{})
		},
		extract: corev1ac.ExtractLimitRange,
		apply: func(ctx context.Context, ns string, ac *corev1ac.LimitRangeApplyConfiguration,
			o metav1.ApplyOptions) (*corev1.LimitRange, error) {
			return c.LimitRanges(ns).Apply(ctx, ac, o)
		},
	}
}

func (r *Reconciler) networkPolicyKind() kind[*networkingv1.NetworkPolicy,
	*networkingv1ac.NetworkPolicyApplyConfiguration] {
	c := r.client.NetworkingV1()
	return kind[*networkingv1.NetworkPolicy, *networkingv1ac.NetworkPolicyApplyConfiguration]{
		name: "NetworkPolicy",
		cached: func(ns, name string) (*networkingv1.NetworkPolicy, error) {
			return r.cache.networkPolicies.NetworkPolicies(ns).Get(name)
		},
		live: func(ctx context.Context, ns, name string) (*networkingv1.NetworkPolicy, error) {
			return c.NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
		},
		extract: networkingv1ac.ExtractNetworkPolicy,
		apply: func(ctx context.Context, ns string,
			ac *networkingv1ac.NetworkPolicyApplyConfiguration,
			o metav1.ApplyOptions) (*networkingv1.NetworkPolicy, error) {
			return c.NetworkPolicies(ns).Apply(ctx, ac, o)
		},
	}
}

func (r *Reconciler) deploymentKind() kind[*appsv1.Deployment,
	*appsv1ac.DeploymentApplyConfiguration] {
	c := r.client.AppsV1()
	return kind[*appsv1.Deployment, *appsv1ac.DeploymentApplyConfiguration]{
		name: "Deployment",
		cached: func(ns, name string) (*appsv1.Deployment, error) {
			return r.cache.deployments.Deployments(ns).Get(name)
		},
		live: func(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
			return c.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		},
		extract: appsv1ac.ExtractDeployment,
		apply: func(ctx context.Context, ns string, ac *appsv1ac.DeploymentApplyConfiguration,
			o metav1.ApplyOptions) (*appsv1.Deployment, error) {
			return c.Deployments(ns).Apply(ctx, ac, o)
		},
		delete: func(ctx context.Context, ns, name string, o metav1.DeleteOptions) error {
			return c.Deployments(ns).Delete(ctx, name, o)
		},
	}
}

func (r *Reconciler) serviceKind() kind[*corev1.Service, *corev1ac.ServiceApplyConfiguration] {
	c := r.client.CoreV1()
	return kind[*corev1.Service, *corev1ac.ServiceApplyConfiguration]{
		name: "Service",
		cached: func(ns, name string) (*corev1.Service, error) {
			return r.cache.services.Services(ns).Get(name)
		},
		live: func(ctx context.Context, ns, name string) (*corev1.Service, error) {
			return c.Services(ns).Get(ctx, name, metav1.GetOptions{})
		},
		extract: corev1ac.ExtractService,
		apply: func(ctx context.Context, ns string, ac *corev1ac.ServiceApplyConfiguration,
			o metav1.ApplyOptions) (*corev1.Service, error) {
			return c.Services(ns).Apply(ctx, ac, o)
		},
		delete: func(ctx context.Context, ns, name string, o metav1.DeleteOptions) error {
			return c.Services(ns).Delete(ctx, name, o)
		},
	}
}
