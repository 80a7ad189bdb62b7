package reconcile_test

import (
	"context"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/reconcile"
)

// BenchmarkConvergedPass measures the steady state: one pass over a project
// with three apps that already matches the cluster. It reads the store and
// the informer caches, compares, and must write nothing.
func BenchmarkConvergedPass(b *testing.B) {
	cfg := cluster(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFixture(b)
	p := f.project(b, "bench")
	for _, name := range []string{"web", "api", "worker"} {
		f.app(b, p, tenancy.App{Name: name, Image: "nginx:1.27", TargetPort: 8080, Replicas: 2,
			Env: map[string]string{"MODE": name}})
	}
	var writes writeCounter
	r, err := reconcile.New(f.config(client(b, cfg, &writes)))
	if err != nil {
		b.Fatalf("create reconciler: %v", err)
	}
	if err := r.StartCaches(ctx); err != nil {
		b.Fatalf("start caches: %v", err)
	}
	// Converge, and let the caches see every write.
	for range 3 {
		if err := r.Pass(ctx, p.ID); err != nil {
			b.Fatalf("pass: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	before := writes.n.Load()

	for b.Loop() {
		if err := r.Pass(ctx, p.ID); err != nil {
			b.Fatalf("pass: %v", err)
		}
	}
	b.ReportMetric(float64(writes.n.Load()-before)/float64(b.N), "writes/op")
}
