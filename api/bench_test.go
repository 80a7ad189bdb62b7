package api

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

// BenchmarkListProjects serves GET /api/v1/projects for a user with 20
// projects in process, on SQLite: the cost of one request without the
// network (the load test in internal/loadtest adds the network).
func BenchmarkListProjects(b *testing.B) {
	st := openStore(b, "sqlite://"+filepath.Join(b.TempDir(), "canopy.db"))
	h := newHarness(b, st)
	u := h.signUp(uniq("bench") + "@example.com")
	for i := range 20 {
		h.createProject(u, uniq(fmt.Sprintf("b%d", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest("GET", "/api/v1/projects", nil)
			r.Header.Set("Authorization", "Bearer "+u.access)
			w := httptest.NewRecorder()
			h.h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}
