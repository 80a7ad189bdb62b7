package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"canopy.dev/canopy/tenancy"
)

// markReady records that the project's objects exist and match its spec.
func (r *Reconciler) markReady(ctx context.Context, p *tenancy.Project) error {
	err := r.setStatus(ctx, p, tenancy.ProjectStatus{
		Status:             tenancy.StatusReady,
		ObservedGeneration: p.Generation,
	})
	if err != nil {
		return err
	}
	return r.setCondition(ctx, p, r.condition(corev1.ConditionTrue, "Reconciled",
		"namespace "+r.namespaceOf(p)+" and its objects match the project"))
}

// markFailed records a failure that no retry cures: only a change of the
// cluster or of the project does. It returns only a store error.
func (r *Reconciler) markFailed(ctx context.Context, p *tenancy.Project, reason string,
	cause error) error {
	r.log.Warn("project failed", "project_id", p.ID, "reason", reason, "error", cause)
	err := r.setStatus(ctx, p, tenancy.ProjectStatus{
		Status:             tenancy.StatusFailed,
		Reason:             cause.Error(),
		ObservedGeneration: p.Generation,
	})
	if err != nil {
		return err
	}
	return r.setCondition(ctx, p, r.condition(corev1.ConditionFalse, reason, cause.Error()))
}

// markWaiting records what the project waits for, keeping its status.
func (r *Reconciler) markWaiting(ctx context.Context, p *tenancy.Project, reason string,
	cause error) error {
	st := tenancy.ProjectStatus{
		Status:             p.Status,
		Reason:             cause.Error(),
		ObservedGeneration: p.ObservedGeneration,
	}
	if err := r.setStatus(ctx, p, st); err != nil {
		return err
	}
	return r.setCondition(ctx, p, r.condition(corev1.ConditionFalse, reason, cause.Error()))
}

// markError records an error a retry may cure, keeping the project's status:
// a ready project whose API server is away is still ready, and says why it
// cannot be checked.
func (r *Reconciler) markError(ctx context.Context, p *tenancy.Project, cause error) error {
	if ctx.Err() != nil {
		return nil // stopping: nothing to report, and no way to write it
	}
	reason := "KubernetesError"
	if unreachable(cause) {
		reason = "APIServerUnreachable"
	}
	return r.markWaiting(ctx, p, reason, cause)
}

func (r *Reconciler) condition(status corev1.ConditionStatus, reason,
	msg string) tenancy.Condition {
	return tenancy.Condition{
		Type:               ConditionClusterReady,
		Status:             string(status),
		Reason:             reason,
		Message:            msg,
		LastTransitionTime: r.cfg.Now(),
	}
}

// setStatus writes st unless the project already says the same.
func (r *Reconciler) setStatus(ctx context.Context, p *tenancy.Project,
	st tenancy.ProjectStatus) error {
	if p.Status == st.Status && p.Reason == st.Reason &&
		p.ObservedGeneration == st.ObservedGeneration {
		return nil
	}
	if err := r.store.UpdateProjectStatus(ctx, p.ID, st); err != nil {
		return fmt.Errorf("update project status project_id=%q: %w", p.ID, err)
	}
	p.Status, p.Reason, p.ObservedGeneration = st.Status, st.Reason, st.ObservedGeneration
	return nil
}

// setCondition writes c unless the project already holds the same one.
func (r *Reconciler) setCondition(ctx context.Context, p *tenancy.Project,
	c tenancy.Condition) error {
	for _, old := range p.Conditions {
		if old.Type == c.Type && old.Status == c.Status && old.Reason == c.Reason &&
			old.Message == c.Message {
			return nil
		}
	}
	if err := r.store.SetProjectCondition(ctx, p.ID, c); err != nil {
		return fmt.Errorf("set project condition project_id=%q type=%q: %w", p.ID, c.Type, err)
	}
	return nil
}

// unreachable reports whether err means the API server could not be reached,
// as opposed to an answer that refused the request.
func unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || utilnet.IsConnectionRefused(err) ||
		utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err)
}

// keepTransitionTimes keeps a condition's old transition time while its
// status stays the same.
func keepTransitionTimes(old, next []tenancy.Condition) []tenancy.Condition {
	out := make([]tenancy.Condition, len(next))
	copy(out, next)
	for i, c := range out {
		for _, o := range old {
			if o.Type == c.Type && o.Status == c.Status {
				out[i].LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return out
}

// sameConditions compares conditions ignoring their transition times.
func sameConditions(a, b []tenancy.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason ||
			x.Message != y.Message {
			return false
		}
	}
	return true
}
