package api

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/sqlstore"
)

// countingStore counts the lists read from the store; DataVersion comes
// from the embedded SQLite store.
type countingStore struct {
	*sqlstore.Store
	lists atomic.Int64
}

func (c *countingStore) ListProjects(ctx context.Context,
	f tenancy.ProjectFilter) ([]*tenancy.Project, string, error) {
	c.lists.Add(1)
	return c.Store.ListProjects(ctx, f)
}

// TestProjectListCacheSeesEveryWrite: on SQLite an unchanged list is served
// from the encoded cache, and every kind of write shows at the next request.
func TestProjectListCacheSeesEveryWrite(t *testing.T) {
	st := &countingStore{Store: openStore(t,
		"sqlite://"+filepath.Join(t.TempDir(), "canopy.db")).(*sqlstore.Store)}
	h := newHarness(t, st)
	ada, bob := h.signUp("ada@example.com"), h.signUp("bob@example.com")
	id := h.createProject(ada, "shop")
	ctx := context.Background()

	list := func(u user) string {
		t.Helper()
		resp := h.do(req{method: "GET", path: "/api/v1/projects", token: u.access})
		if resp.status != 200 {
			t.Fatalf("list: %d %s", resp.status, resp.body)
		}
		return string(resp.body)
	}

	first := list(ada)
	before := st.lists.Load()
	if again := list(ada); again != first || st.lists.Load() != before {
		t.Fatalf("an unchanged list was read again (%d reads) or differs", st.lists.Load()-before)
	}

	writes := []struct {
		name  string
		write func()
		who   user
		shows string
	}{
		{"new project", func() { h.createProject(ada, "cart") }, ada, `"name":"cart"`},
		{"status from the reconciler", func() {
			_ = st.UpdateProjectStatus(ctx, id, tenancy.ProjectStatus{
				Status: tenancy.StatusReady, ObservedGeneration: 1})
		}, ada, `"status":"ready"`},
		{"condition from the Grafana sync", func() {
			_ = st.SetProjectCondition(ctx, id, tenancy.Condition{Type: "GrafanaReady",
				Status: "True", Reason: "Synced"})
		}, ada, `"reason":"Synced"`},
		{"member added", func() {
			_ = st.AddMember(ctx, &tenancy.Member{ProjectID: id, UserID: bob.id,
				Role: tenancy.RoleViewer})
		}, bob, `"name":"shop"`},
		{"project deleting", func() { _ = st.MarkProjectDeleting(ctx, id) }, ada,
			`"status":"deleting"`},
	}
	for _, w := range writes {
		list(w.who) // cached at the current version
		w.write()
		if got := list(w.who); !strings.Contains(got, w.shows) {
			t.Errorf("after %s the list lacks %s:\n%s", w.name, w.shows, got)
		}
	}
}
