package reconcile

import (
	"context"
	"errors"
)

// StartCaches starts the informers and waits for their caches, for tests
// that drive passes by hand.
func (r *Reconciler) StartCaches(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	if !r.waitForCaches(ctx) {
		return errors.New("caches did not sync")
	}
	return nil
}

// Pass runs one reconcile pass over a project, as a worker would.
func (r *Reconciler) Pass(ctx context.Context, projectID string) error {
	return r.reconcileProject(ctx, projectID)
}
