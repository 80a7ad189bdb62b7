package sqlstore

import (
	"context"
	"errors"
	"testing"

	"canopy.dev/canopy/tenancy"
)

// cachedStatements counts the statements the store keeps prepared.
func cachedStatements(st *Store) int {
	n := 0
	st.stmts.Range(func(_, _ any) bool { n++; return true })
	return n
}

// TestSQLiteReadsPreparedOnce reads many times through every shape of the
// list query and checks that the store keeps one statement per shape, and
// none after Close.
func TestSQLiteReadsPreparedOnce(t *testing.T) {
	ctx := context.Background()
	st := migrated(openSQLite)(t)
	owner := mustUser(t, st, "owner@example.com")
	for _, name := range []string{"one", "two", "three"} {
		mustProject(t, st, owner, name)
	}

	// Four shapes: member or not, first page or not.
	_, next, err := st.ListProjects(ctx, tenancy.ProjectFilter{Page: tenancy.Page{Limit: 1}})
	if err != nil || next == "" {
		t.Fatalf("list first page: next %q, %v", next, err)
	}
	filters := []tenancy.ProjectFilter{
		{Page: tenancy.Page{Limit: 1}},
		{Page: tenancy.Page{Limit: 2, Cursor: next}},
		{MemberID: owner.ID, Page: tenancy.Page{Limit: 3}},
		{MemberID: owner.ID, Page: tenancy.Page{Limit: 50, Cursor: next}},
	}
	for range 5 {
		for _, f := range filters {
			if _, _, err := st.ListProjects(ctx, f); err != nil {
				t.Fatalf("list %+v: %v", f, err)
			}
		}
	}
	if n := cachedStatements(st); n != len(filters) {
		t.Errorf("%d statements kept for %d query shapes", n, len(filters))
	}
	if err := st.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := cachedStatements(st); n != 0 {
		t.Errorf("%d statements kept after Close", n)
	}
}

// TestSQLitePreparedReadsFollowSchemaChanges prepares reads, takes every
// migration down and up again, which rebuilds the tables, and checks that
// the same reads see the new tables' rows.
func TestSQLitePreparedReadsFollowSchemaChanges(t *testing.T) {
	ctx := context.Background()
	st := migrated(openSQLite)(t)
	before := mustProject(t, st, mustUser(t, st, "before@example.com"), "before")
	if _, err := st.ProjectByID(ctx, before.ID); err != nil {
		t.Fatalf("get project: %v", err)
	}
	all := tenancy.ProjectFilter{Page: tenancy.Page{Limit: 10}}
	if _, _, err := st.ListProjects(ctx, all); err != nil {
		t.Fatalf("list projects: %v", err)
	}

	for {
		if err := st.MigrateDown(ctx); err != nil {
			break // no migration left
		}
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}

	after := mustProject(t, st, mustUser(t, st, "after@example.com"), "after")
	got, err := st.ProjectByID(ctx, after.ID)
	if err != nil || got.Name != "after" {
		t.Fatalf("get project after the rebuild: %+v, %v", got, err)
	}
	if _, err := st.ProjectByID(ctx, before.ID); !errors.Is(err, tenancy.ErrNotFound) {
		t.Errorf("get dropped project: %v, want not found", err)
	}
	projects, _, err := st.ListProjects(ctx, all)
	if err != nil || len(projects) != 1 || projects[0].ID != after.ID {
		t.Errorf("list after the rebuild: %d projects, %v; want only %q", len(projects), err,
			after.Name)
	}
}
