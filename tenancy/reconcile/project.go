package reconcile

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"canopy.dev/canopy/tenancy"
)

// errNamespaceTerminating means the project's namespace is being removed
// while the project still wants it; the pass waits for it to go.
var errNamespaceTerminating = errors.New("namespace is terminating")

// reconcileProject makes the cluster match one project of the store, then
// writes what it found back. A project no longer in the store is left alone:
// Canopy deletes a namespace only through a project marked deleting.
func (r *Reconciler) reconcileProject(ctx context.Context, id string) error {
	p, err := r.store.ProjectByID(ctx, id)
	if errors.Is(err, tenancy.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load project project_id=%q: %w", id, err)
	}
	if p.Status == tenancy.StatusDeleting {
		return r.deleteProject(ctx, p)
	}

	err = r.ensureProjectObjects(ctx, p)
	switch {
	case errors.Is(err, ErrNotManaged):
		return r.markFailed(ctx, p, "NotManagedByCanopy", err)
	case errors.Is(err, ErrOtherProject):
		return r.markFailed(ctx, p, "NamespaceOfOtherProject", err)
	case errors.Is(err, errNamespaceTerminating):
		r.enqueueAfter(p.ID, pollInterval)
		return r.markWaiting(ctx, p, "NamespaceTerminating", err)
	case err != nil:
		return errors.Join(err, r.markError(ctx, p, err))
	}

	if err := r.reconcileApps(ctx, p); err != nil {
		return errors.Join(err, r.markError(ctx, p, err))
	}
	return r.markReady(ctx, p)
}

// ensureProjectObjects makes the namespace, quota, limit range and network
// policy of a project match the desired ones.
func (r *Reconciler) ensureProjectObjects(ctx context.Context, p *tenancy.Project) error {
	if err := r.ensureNamespace(ctx, p); err != nil {
		return err
	}
	ns := r.namespaceOf(p)
	if _, err := ensure(ctx, r, r.quotaKind(), ns, objectName, r.desiredQuota(p)); err != nil {
		return err
	}
	_, err := ensure(ctx, r, r.limitRangeKind(), ns, objectName, r.desiredLimitRange(p))
	if err != nil {
		return err
	}
	_, err = ensure(ctx, r, r.networkPolicyKind(), ns, objectName, r.desiredNetworkPolicy(p))
	return err
}

// ensureNamespace creates the project's namespace, or restores its labels.
// It creates rather than applies, so that a namespace someone made between
// our read and our write is refused by the API server instead of adopted.
func (r *Reconciler) ensureNamespace(ctx context.Context, p *tenancy.Project) error {
	name := r.namespaceOf(p)
	ns, err := r.namespace(ctx, name)
	if apierrors.IsNotFound(err) {
		ns, err = r.createNamespace(ctx, p)
	}
	switch {
	case err != nil:
		return err
	case !managed(ns):
		return fmt.Errorf("namespace %s %w", name, ErrNotManaged)
	case ownedByOther(ns, p):
		return fmt.Errorf("namespace %s %w (ID %s)", name, ErrOtherProject,
			ns.Annotations[AnnotationProjectID])
	case ns.DeletionTimestamp != nil:
		return fmt.Errorf("wait for namespace %s: %w", name, errNamespaceTerminating)
	case hasAll(ns.Labels, projectLabels(p)) && hasAll(ns.Annotations, projectAnnotations(p)):
		return nil
	}

	_, err = r.client.CoreV1().Namespaces().Apply(ctx, r.desiredNamespace(p), applyOptions)
	if err != nil {
		return fmt.Errorf("apply namespace name=%q: %w", name, err)
	}
	r.metrics.wrote("Namespace", "apply")
	r.log.Info("applied object", "kind", "Namespace", "namespace", name, "project_id", p.ID)
	return nil
}

// namespace reads a namespace from the cache, then from the API server.
func (r *Reconciler) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns, err := r.cache.namespaces.Get(name)
	if err == nil || !apierrors.IsNotFound(err) {
		return ns, err
	}
	ns, err = r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get namespace name=%q: %w", name, err)
	}
	return ns, err
}

func (r *Reconciler) createNamespace(ctx context.Context,
	p *tenancy.Project) (*corev1.Namespace, error) {
	name := r.namespaceOf(p)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:        name,
		Labels:      projectLabels(p),
		Annotations: projectAnnotations(p),
	}}
	created, err := r.client.CoreV1().Namespaces().Create(ctx, ns,
		metav1.CreateOptions{FieldManager: FieldManager})
	if err == nil {
		r.metrics.wrote("Namespace", "create")
	}
	if apierrors.IsAlreadyExists(err) {
		created, err = r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("create namespace name=%q: %w", name, err)
	}
	r.log.Info("created namespace", "namespace", name, "project_id", p.ID)
	return created, nil
}

// deleteProject deletes the project's namespace and, once the API server no
// longer has it, the project itself. The project stays deleting until then,
// so a crash at any point resumes here.
func (r *Reconciler) deleteProject(ctx context.Context, p *tenancy.Project) error {
	name := r.namespaceOf(p)
	ns, err := r.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return r.forgetProject(ctx, p)
	case err != nil:
		err = fmt.Errorf("get namespace name=%q: %w", name, err)
		return errors.Join(err, r.markError(ctx, p, err))
	case !managed(ns) || ownedByOther(ns, p):
		// The project never owned it (it failed on this very namespace).
		r.log.Warn("leaving a namespace the project does not own",
			"namespace", name, "project_id", p.ID)
		return r.forgetProject(ctx, p)
	case ns.DeletionTimestamp == nil:
		uid := ns.UID
		err := r.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			err = fmt.Errorf("delete namespace name=%q: %w", name, err)
			return errors.Join(err, r.markError(ctx, p, err))
		}
		r.metrics.wrote("Namespace", "delete")
		r.log.Info("deleted namespace", "namespace", name, "project_id", p.ID)
	}

	// The namespace's delete event queues the project again; poll besides,
	// in case the event was missed.
	r.enqueueAfter(p.ID, pollInterval)
	return r.markWaiting(ctx, p, "NamespaceTerminating",
		fmt.Errorf("wait for namespace %s to be removed: %w", name, errNamespaceTerminating))
}

func (r *Reconciler) forgetProject(ctx context.Context, p *tenancy.Project) error {
	err := r.store.DeleteProject(ctx, p.ID)
	if err != nil && !errors.Is(err, tenancy.ErrNotFound) {
		return fmt.Errorf("delete project project_id=%q: %w", p.ID, err)
	}
	r.log.Info("deleted project", "project_id", p.ID, "namespace", r.namespaceOf(p))
	return nil
}

// ownedByOther reports whether ns names another project as its owner. A
// namespace without the annotation counts as the project's own.
func ownedByOther(ns *corev1.Namespace, p *tenancy.Project) bool {
	id := ns.Annotations[AnnotationProjectID]
	return id != "" && id != p.ID
}

// hasAll reports whether m holds every key of want with the same value.
func hasAll(m, want map[string]string) bool {
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			return false
		}
	}
	return true
}
