package reconcile

import (
	"context"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"canopy.dev/canopy/tenancy"
)

// reconcileApps makes the cluster match every app of a project. It goes on
// past an app that fails, and returns every failure that a retry may cure.
func (r *Reconciler) reconcileApps(ctx context.Context, p *tenancy.Project) error {
	var errs []error
	page := tenancy.Page{Limit: 100}
	for {
		apps, next, err := r.store.ListApps(ctx, p.ID, page)
		if err != nil {
			return fmt.Errorf("list apps project_id=%q: %w", p.ID, err)
		}
		for _, a := range apps {
			if err := r.reconcileApp(ctx, p, a); err != nil {
				errs = append(errs, err)
			}
		}
		if next == "" {
			return errors.Join(errs...)
		}
		page.Cursor = next
	}
}

// reconcileApp applies an app's Deployment and Service and writes back how
// far its rollout got. An app that cannot be applied as asked (a name taken
// by an unmanaged object, a spec the API server refuses) fails until its
// spec changes; any other error is returned for a retry.
func (r *Reconciler) reconcileApp(ctx context.Context, p *tenancy.Project, a *tenancy.App) error {
	if a.Status == tenancy.StatusDeleting {
		return r.deleteApp(ctx, p, a)
	}

	ns := r.namespaceOf(p)
	dep, err := ensure(ctx, r, r.deploymentKind(), ns, a.Name, r.desiredDeployment(p, a))
	if err == nil {
		_, err = ensure(ctx, r, r.serviceKind(), ns, a.Name, r.desiredService(p, a))
	}
	switch {
	case errors.Is(err, ErrNotManaged) || apierrors.IsInvalid(err):
		return r.writeAppStatus(ctx, a, tenancy.AppStatus{
			Status:             tenancy.StatusFailed,
			Reason:             err.Error(),
			Conditions:         a.Conditions,
			ObservedGeneration: a.Generation,
		})
	case err != nil:
		st := currentAppStatus(a)
		st.Reason = err.Error()
		return errors.Join(err, r.writeAppStatus(ctx, a, st))
	}
	return r.writeAppStatus(ctx, a, r.rolloutStatus(dep, a))
}

// rolloutStatus says how far dep got towards what the app asks for: ready
// once every replica of the current spec is available, failed when the
// Deployment gave up progressing, provisioning in between.
func (r *Reconciler) rolloutStatus(dep *appsv1.Deployment, a *tenancy.App) tenancy.AppStatus {
	st := tenancy.AppStatus{
		AvailableReplicas:  int(dep.Status.AvailableReplicas),
		Conditions:         []tenancy.Condition{r.availableCondition(dep)},
		ObservedGeneration: a.Generation,
	}
	progressing := deploymentCondition(dep, appsv1.DeploymentProgressing)
	observed := dep.Status.ObservedGeneration >= dep.Generation
	switch {
	case progressing != nil && progressing.Status == corev1.ConditionFalse:
		st.Status, st.Reason = tenancy.StatusFailed, progressing.Message
	case observed && int(dep.Status.UpdatedReplicas) >= a.Replicas &&
		st.AvailableReplicas >= a.Replicas:
		st.Status = tenancy.StatusReady
	default:
		st.Status = tenancy.StatusProvisioning
		st.Reason = fmt.Sprintf("rolling out: %d of %d replicas available",
			st.AvailableReplicas, a.Replicas)
	}
	return st
}

// availableCondition mirrors the Deployment's Available condition.
func (r *Reconciler) availableCondition(dep *appsv1.Deployment) tenancy.Condition {
	c := deploymentCondition(dep, appsv1.DeploymentAvailable)
	if c == nil {
		return tenancy.Condition{
			Type:               ConditionAvailable,
			Status:             string(corev1.ConditionUnknown),
			Reason:             "NoStatus",
			Message:            "the Deployment reports no status yet",
			LastTransitionTime: r.cfg.Now(),
		}
	}
	return tenancy.Condition{
		Type:               ConditionAvailable,
		Status:             string(c.Status),
		Reason:             c.Reason,
		Message:            c.Message,
		LastTransitionTime: c.LastTransitionTime.Time,
	}
}

func deploymentCondition(dep *appsv1.Deployment,
	t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range dep.Status.Conditions {
		if dep.Status.Conditions[i].Type == t {
			return &dep.Status.Conditions[i]
		}
	}
	return nil
}

// deleteApp deletes an app's Deployment and Service and, once both are gone,
// the app itself; it stays deleting until then.
func (r *Reconciler) deleteApp(ctx context.Context, p *tenancy.Project, a *tenancy.App) error {
	ns := r.namespaceOf(p)
	depGone, err := remove(ctx, r, r.deploymentKind(), ns, a.Name)
	if err != nil {
		return err
	}
	svcGone, err := remove(ctx, r, r.serviceKind(), ns, a.Name)
	if err != nil {
		return err
	}
	if !depGone || !svcGone {
		r.enqueueAfter(p.ID, pollInterval)
		return nil
	}

	err = r.store.DeleteApp(ctx, p.ID, a.ID)
	if err != nil && !errors.Is(err, tenancy.ErrNotFound) {
		return fmt.Errorf("delete app app_id=%q: %w", a.ID, err)
	}
	r.log.Info("deleted app", "project_id", p.ID, "app_id", a.ID, "namespace", ns)
	return nil
}

func currentAppStatus(a *tenancy.App) tenancy.AppStatus {
	return tenancy.AppStatus{
		Status:             a.Status,
		Reason:             a.Reason,
		AvailableReplicas:  a.AvailableReplicas,
		Conditions:         a.Conditions,
		ObservedGeneration: a.ObservedGeneration,
	}
}

// writeAppStatus stores st unless the app already says the same, keeping a
// condition's transition time when its status did not change.
func (r *Reconciler) writeAppStatus(ctx context.Context, a *tenancy.App,
	st tenancy.AppStatus) error {
	st.Conditions = keepTransitionTimes(a.Conditions, st.Conditions)
	cur := currentAppStatus(a)
	if cur.Status == st.Status && cur.Reason == st.Reason &&
		cur.AvailableReplicas == st.AvailableReplicas &&
		cur.ObservedGeneration == st.ObservedGeneration &&
		sameConditions(cur.Conditions, st.Conditions) {
		return nil
	}
	if err := r.store.UpdateAppStatus(ctx, a.ID, st); err != nil {
		return fmt.Errorf("update app status app_id=%q: %w", a.ID, err)
	}
	return nil
}
