package reconcile

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"

	"canopy.dev/canopy/tenancy"
)

// listers read the informer caches. They hold only objects labelled
// managed-by=canopy, so anything else is invisible to them by construction.
type listers struct {
	namespaces      corelisters.NamespaceLister
	quotas          corelisters.ResourceQuotaLister
	limitRanges     corelisters.LimitRangeLister
	networkPolicies netlisters.NetworkPolicyLister
	deployments     appslisters.DeploymentLister
	services        corelisters.ServiceLister
}

// buildInformers watches every managed object kind, cluster-wide, filtered by
// the managed-by label, and queues an object's project on every event.
func (r *Reconciler) buildInformers() {
	selector := LabelManagedBy + "=" + managedByValue
	r.factory = informers.NewSharedInformerFactoryWithOptions(r.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = selector
		}))

	core := r.factory.Core().V1()
	ns, rq, lr := core.Namespaces(), core.ResourceQuotas(), core.LimitRanges()
	np := r.factory.Networking().V1().NetworkPolicies()
	dep, svc := r.factory.Apps().V1().Deployments(), core.Services()
	r.cache = listers{
		namespaces:      ns.Lister(),
		quotas:          rq.Lister(),
		limitRanges:     lr.Lister(),
		networkPolicies: np.Lister(),
		deployments:     dep.Lister(),
		services:        svc.Lister(),
	}

	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    r.onEvent,
		UpdateFunc: func(_, obj any) { r.onEvent(obj) },
		DeleteFunc: r.onEvent,
	}
	for _, inf := range []cache.SharedIndexInformer{
		ns.Informer(), rq.Informer(), lr.Informer(),
		np.Informer(), dep.Informer(), svc.Informer(),
	} {
		// AddEventHandler fails only on a stopped informer; these are new.
		_, _ = inf.AddEventHandler(handler)
		r.synced = append(r.synced, inf.HasSynced)
	}
}

// onEvent queues the project that owns obj.
func (r *Reconciler) onEvent(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	r.enqueue(m.GetAnnotations()[AnnotationProjectID])
}

// waitForCaches blocks until the informer caches hold the cluster's objects.
// While they do not, it writes the reason into every project's condition
// every SyncTimeout, so that users see why nothing happens. It returns false
// if ctx ended first.
func (r *Reconciler) waitForCaches(ctx context.Context) bool {
	for {
		syncCtx, cancel := context.WithTimeout(ctx, r.cfg.SyncTimeout)
		ok := cache.WaitForCacheSync(syncCtx.Done(), r.synced...)
		cancel()
		if ok {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.reportUnreachable(ctx)
	}
}

// reportUnreachable records in every project that the API server cannot be
// reached. A server that answers but is slow to fill the caches is only
// logged: the projects are not worse off than before.
func (r *Reconciler) reportUnreachable(ctx context.Context) {
	_, err := r.client.Discovery().ServerVersion()
	if err == nil {
		r.log.Info("waiting for the Kubernetes informer caches to sync")
		return
	}
	msg := "cannot reach the Kubernetes API server: " + err.Error()
	r.log.Warn("kubernetes API server unreachable", "error", err)

	cond := tenancy.Condition{
		Type:               ConditionClusterReady,
		Status:             "Unknown",
		Reason:             "APIServerUnreachable",
		Message:            msg,
		LastTransitionTime: r.cfg.Now(),
	}
	err = r.eachProject(ctx, func(p *tenancy.Project) {
		st := tenancy.ProjectStatus{
			Status: p.Status, Reason: msg, ObservedGeneration: p.ObservedGeneration,
		}
		err := r.setStatus(ctx, p, st)
		if err == nil {
			err = r.setCondition(ctx, p, cond)
		}
		if err != nil {
			r.log.Error("report unreachable API server", "project_id", p.ID, "error", err)
		}
	})
	if err != nil {
		r.log.Error("report unreachable API server", "error", err)
	}
}

// pollInterval is how often a project waiting on the cluster (a namespace
// being removed) is looked at again when no event arrives.
const pollInterval = 5 * time.Second
