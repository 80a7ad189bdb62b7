package reconcile

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// runElected stands for election again and again until ctx ends, leading
// whenever this replica holds the Lease.
func (r *Reconciler) runElected(ctx context.Context) error {
	le := r.cfg.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
		Client:     r.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
	}
	for ctx.Err() == nil {
		if err := r.term(ctx, lock); err != nil {
			return err
		}
	}
	return nil
}

// term is one candidacy: wait for the Lease, lead while holding it, and
// return once it is lost or ctx ends. The Lease is released only after every
// worker stopped, so that two leaders never write at once.
func (r *Reconciler) term(ctx context.Context, lock resourcelock.Interface) error {
	le := r.cfg.LeaderElection
	// The election outlives ctx until the workers have stopped.
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()

	started, led := make(chan struct{}), make(chan struct{})
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            le.Name,
		LeaseDuration:   le.LeaseDuration,
		RenewDeadline:   le.RenewDeadline,
		RetryPeriod:     le.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaseCtx context.Context) {
				close(started)
				defer close(led)
				leadCtx, cancel := context.WithCancel(leaseCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				r.log.Info("leading", "identity", le.Identity, "lease", le.Name)
				r.lead(leadCtx)
			},
			OnStoppedLeading: func() {
				r.log.Info("not leading", "identity", le.Identity, "lease", le.Name)
			},
		},
	})
	if err != nil {
		return fmt.Errorf("create leader elector: %w", err)
	}

	// When ctx ends: stop leading first, then end the election.
	go func() {
		select {
		case <-ctx.Done():
		case <-electCtx.Done():
			return
		}
		select {
		case <-started:
			<-led
		default:
		}
		stopElection()
	}()

	elector.Run(electCtx)
	if electCtx.Err() == nil {
		// The Lease was lost while ctx lives: the workers stop on their own.
		r.log.Error("lost the reconciler lease", "identity", le.Identity, "lease", le.Name)
		<-led
	}
	return nil
}
