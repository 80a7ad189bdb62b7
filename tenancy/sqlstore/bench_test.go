package sqlstore

import (
	"context"
	"fmt"
	"testing"

	"canopy.dev/canopy/tenancy"
)

// BenchmarkListProjects reads the page GET /api/v1/projects reads: the 20
// projects of one member, on each backend, from one goroutine (serial) and
// from GOMAXPROCS goroutines at once (parallel). On SQLite those are served
// from memory after the first; database reads it from the database each time.
//
//	go test -run '^$' -bench ListProjects -benchmem ./tenancy/sqlstore
func BenchmarkListProjects(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := migrated(be.open)(b)
			ctx := context.Background()
			owner := &tenancy.User{Email: "bench@example.com", Name: "Bench", PasswordHash: "x"}
			if err := st.CreateUser(ctx, owner); err != nil {
				b.Fatal(err)
			}
			for i := range 20 {
				p := &tenancy.Project{Name: fmt.Sprintf("bench-%02d", i),
					Namespace: fmt.Sprintf("canopy-bench-%02d", i), OwnerID: owner.ID}
				if err := st.CreateProject(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			filter := tenancy.ProjectFilter{MemberID: owner.ID, Page: tenancy.Page{Limit: 20}}
			list := func(b *testing.B) {
				page, _, err := st.ListProjects(ctx, filter)
				if err != nil || len(page) != 20 {
					b.Fatalf("list projects: %d, %v", len(page), err)
				}
			}

			b.Run("serial", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					list(b)
				}
			})
			b.Run("database", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if page, _, err := st.listProjects(ctx, filter); err != nil || len(page) != 20 {
						b.Fatalf("list projects: %d, %v", len(page), err)
					}
				}
			})
			b.Run("parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						list(b)
					}
				})
			})
		})
	}
}
