package reconcile_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/reconcile"
)

// TestCrashConverges stops a reconciler after each number of writes a new
// project needs, then runs a fresh one, which must finish the job.
func TestCrashConverges(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)

	// Namespace, quota, limit range, network policy, then a Deployment and a
	// Service for each of two apps.
	const writesNeeded int64 = 8
	for n := int64(1); n <= writesNeeded; n++ {
		p := f.project(t, fmt.Sprintf("crash-%d", n))
		web := f.app(t, p, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 8080,
			Replicas: 1})
		api := f.app(t, p, tenancy.App{Name: "api", Image: "nginx:1.27", TargetPort: 9090,
			Replicas: 2, Env: map[string]string{"MODE": "api"}})

		if got := crashAfter(t, f, cfg, n); got != n {
			t.Fatalf("crashed reconciler made %d writes, want %d", got, n)
		}
		if got := f.getProject(t, p.ID); got.Status != tenancy.StatusProvisioning {
			t.Fatalf("after a crash at write %d the project is %s, want provisioning",
				n, got.Status)
		}

		_, stop := start(t, f.config(client(t, cfg, nil)))
		f.waitStatus(t, p.ID, tenancy.StatusReady)
		eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, p, web, api) })
		stop()
	}

	// A crash right after the namespace's deletion resumes the deletion.
	p := f.getProject(t, f.project(t, "crash-delete").ID)
	_, stop := start(t, f.config(client(t, cfg, nil)))
	f.waitStatus(t, p.ID, tenancy.StatusReady)
	stop()
	if err := f.store.MarkProjectDeleting(ctx, p.ID); err != nil {
		t.Fatalf("mark deleting: %v", err)
	}
	if got := crashAfter(t, f, cfg, 1); got != 1 {
		t.Fatalf("crashed reconciler made %d writes, want 1", got)
	}
	finalizeNamespace(t, cs, "canopy-"+p.Name)
	if got := f.getProject(t, p.ID); got.Status != tenancy.StatusDeleting {
		t.Fatalf("project is %s, want still deleting", got.Status)
	}
	start(t, f.config(client(t, cfg, nil)))
	f.waitGone(t, p.ID)
}

// crashAfter runs a reconciler until it made n writes, stops it there as a
// crash would, and returns how many writes it made.
func crashAfter(t *testing.T, f *fixture, cfg *rest.Config, n int64) int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &writeCounter{onWrite: func(got int64) {
		if got >= n {
			cancel()
		}
	}}
	r, err := reconcile.New(f.config(client(t, cfg, w)))
	if err != nil {
		t.Fatalf("create reconciler: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Second):
		t.Fatalf("reconciler made only %d of %d writes", w.n.Load(), n)
	}
	if err := <-done; err != nil {
		t.Fatalf("run reconciler: %v", err)
	}
	return w.n.Load()
}

// TestLeaderElection runs two replicas at once: one leads and writes, the
// other writes nothing until the leader stops.
func TestLeaderElection(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)
	lease := fmt.Sprintf("canopy-test-election-%d", runs.Add(1))

	counters := map[string]*writeCounter{"a": {}, "b": {}}
	registries := map[string]*prometheus.Registry{}
	stops := map[string]func(){}
	replicas := map[string]*reconcile.Reconciler{}
	for id, w := range counters {
		c := f.config(client(t, cfg, w))
		registries[id] = prometheus.NewRegistry()
		c.Registerer = registries[id]
		c.LeaderElection = reconcile.LeaderElection{
			Enabled: true, Namespace: "default", Name: lease, Identity: id,
			// Generous, so that a loaded machine does not lose the lease; a
			// stopping leader releases it, so the takeover is quick anyway.
			LeaseDuration: 8 * time.Second, RenewDeadline: 5 * time.Second,
			RetryPeriod: 250 * time.Millisecond,
		}
		replicas[id], stops[id] = start(t, c)
	}

	first := f.project(t, "elect-one")
	web := f.app(t, first, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 80,
		Replicas: 1})
	for _, r := range replicas {
		r.ProjectChanged(first.ID)
	}
	f.waitStatus(t, first.ID, tenancy.StatusReady)
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, first, web) })

	leader := leaseHolder(t, lease)
	follower := map[string]string{"a": "b", "b": "a"}[leader]
	if leader == "" || follower == "" {
		t.Fatalf("lease holder %q, want a or b", leader)
	}
	if counters[leader].n.Load() == 0 || counters[follower].n.Load() != 0 {
		t.Fatalf("leader %s made %d writes and follower %s %d, want some and none",
			leader, counters[leader].n.Load(), follower, counters[follower].n.Load())
	}

	// The metrics tell the same story as the wire.
	eventually(t, 5*time.Second, func() error {
		for id, w := range counters {
			got := metricSum(t, registries[id], "canopy_reconcile_writes_total")
			if got != float64(w.n.Load()) {
				return fmt.Errorf("replica %s counts %g writes, the wire %d", id, got, w.n.Load())
			}
		}
		return nil
	})
	if metricSum(t, registries[leader], "canopy_reconcile_leader") != 1 ||
		metricSum(t, registries[follower], "canopy_reconcile_leader") != 0 {
		t.Errorf("canopy_reconcile_leader is not 1 on the leader and 0 on the follower")
	}
	if !replicas[leader].Leading() || replicas[follower].Leading() {
		t.Errorf("Leading() = %v on the leader and %v on the follower, want true and false",
			replicas[leader].Leading(), replicas[follower].Leading())
	}

	// The leader stops; the follower takes the Lease and the work over.
	stops[leader]()
	leaderWrites := counters[leader].n.Load()
	second := f.project(t, "elect-two")
	replicas[follower].ProjectChanged(second.ID)
	f.waitStatus(t, second.ID, tenancy.StatusReady)
	eventually(t, 10*time.Second, func() error { return verifyProject(ctx, cs, second) })
	if got := leaseHolder(t, lease); got != follower {
		t.Errorf("lease holder %q after the leader stopped, want %q", got, follower)
	}
	if !replicas[follower].Leading() || replicas[leader].Leading() {
		t.Error("Leading() did not move to the follower when the leader stopped")
	}
	if counters[follower].n.Load() == 0 || counters[leader].n.Load() != leaderWrites {
		t.Errorf("follower made %d writes and the stopped leader %d more, want some and none",
			counters[follower].n.Load(), counters[leader].n.Load()-leaderWrites)
	}
}

func leaseHolder(t *testing.T, name string) string {
	t.Helper()
	l, err := client(t, cluster(t), nil).CoordinationV1().Leases("default").
		Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get lease: %v", err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestAPIServerLostAndBack cuts the reconciler off its API server: projects
// say why they do not converge, nothing asked for is lost, and everything
// converges once the server is back.
func TestAPIServerLostAndBack(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	cs := client(t, cfg, nil)
	line, through := newCable(t, cfg)
	r, _ := start(t, f.config(client(t, through, nil)))

	old := f.project(t, "lost-old")
	web := f.app(t, old, tenancy.App{Name: "web", Image: "nginx:1.27", TargetPort: 80,
		Replicas: 1})
	r.ProjectChanged(old.ID)
	f.waitStatus(t, old.ID, tenancy.StatusReady)

	line.cut()
	fresh := f.project(t, "lost-new")
	image := "nginx:1.28"
	web, err := f.store.UpdateAppSpec(ctx, old.ID, web.ID, &image, nil)
	if err != nil {
		t.Fatalf("update app: %v", err)
	}
	r.ProjectChanged(fresh.ID)
	r.ProjectChanged(old.ID)

	waitUnreachable(t, f, fresh.ID, tenancy.StatusProvisioning)
	waitUnreachable(t, f, old.ID, tenancy.StatusReady)

	line.mend()
	f.waitStatus(t, fresh.ID, tenancy.StatusReady)
	eventually(t, 20*time.Second, func() error {
		if err := verifyProject(ctx, cs, old, web); err != nil {
			return err
		}
		return verifyProject(ctx, cs, fresh)
	})
	eventually(t, 10*time.Second, func() error {
		p := f.getProject(t, old.ID)
		if c := condition(p.Conditions, reconcile.ConditionClusterReady); c == nil ||
			c.Status != "True" || p.Reason != "" {
			return fmt.Errorf("project reason %q and condition %+v, want ready again", p.Reason, c)
		}
		return nil
	})
}

// TestAPIServerAwayAtStart starts a reconciler whose API server is away: it
// cannot fill its caches, says so in every project, and converges once the
// server is reachable.
func TestAPIServerAwayAtStart(t *testing.T) {
	cfg := cluster(t)
	ctx := context.Background()
	f := newFixture(t)
	line, through := newCable(t, cfg)
	line.cut()
	p := f.project(t, "away")
	start(t, f.config(client(t, through, nil)))

	eventually(t, 10*time.Second, func() error {
		c := condition(f.getProject(t, p.ID).Conditions, reconcile.ConditionClusterReady)
		if c == nil || c.Reason != "APIServerUnreachable" ||
			!strings.Contains(c.Message, "cannot reach the Kubernetes API server") {
			return fmt.Errorf("condition %+v, want APIServerUnreachable", c)
		}
		return nil
	})

	line.mend()
	f.waitStatus(t, p.ID, tenancy.StatusReady)
	if err := verifyProject(ctx, client(t, cfg, nil), p); err != nil {
		t.Error(err)
	}
}

// waitUnreachable waits until the project reports the lost API server while
// keeping status.
func waitUnreachable(t *testing.T, f *fixture, id string, status tenancy.Status) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		p := f.getProject(t, id)
		c := condition(p.Conditions, reconcile.ConditionClusterReady)
		if p.Status != status || p.Reason == "" || c == nil || c.Status != "False" ||
			c.Reason != "APIServerUnreachable" {
			return fmt.Errorf("project %s (%q) with condition %+v, want %s and unreachable",
				p.Status, p.Reason, c, status)
		}
		return nil
	})
}
