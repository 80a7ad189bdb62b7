package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"canopy.dev/canopy/tenancy"
)

// listed returns the page ListProjects serves to f and whether the store
// served it from memory.
func listed(t *testing.T, st *Store, f tenancy.ProjectFilter) ([]*tenancy.Project, bool) {
	t.Helper()
	ctx := context.Background()
	v, err := st.lists.current(ctx)
	wantErr(t, err, nil, "read data version")
	key := pageKey{memberID: f.MemberID, limit: limit(f.Page.Limit), cursor: f.Page.Cursor}
	_, _, hit := st.lists.get(v, key)
	page, _, err := st.ListProjects(ctx, f)
	wantErr(t, err, nil, "list projects")
	return page, hit
}

// byID returns the project of page with that id, or nil.
func byID(page []*tenancy.Project, id string) *tenancy.Project {
	i := slices.IndexFunc(page, func(p *tenancy.Project) bool { return p.ID == id })
	if i < 0 {
		return nil
	}
	return page[i]
}

// TestSQLiteListCacheSeesEveryWrite reads each list twice (the second read
// must come from memory), makes one kind of write, and reads again: the
// write must show at once. Writes from another store on the same file and
// bare SQL stand for writers the store does not know of.
func TestSQLiteListCacheSeesEveryWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "canopy.db")
	st := migrated(func(t testing.TB) *Store { return openURL(t, "sqlite://"+path) })(t)
	other := openURL(t, "sqlite://"+path)

	alice := mustUser(t, st, "alice@example.com")
	bob := mustUser(t, st, "bob@example.com")
	kept := mustProject(t, st, alice, "kept")
	var added *tenancy.Project

	asAlice := tenancy.ProjectFilter{MemberID: alice.ID}
	asBob := tenancy.ProjectFilter{MemberID: bob.ID}
	cases := []struct {
		name  string
		as    tenancy.ProjectFilter
		write func() error
		// holds reports whether the page shows the write.
		holds func(page []*tenancy.Project) bool
	}{
		{"CreateProject", asAlice, func() error {
			added = &tenancy.Project{Name: "added", Namespace: "canopy-added", OwnerID: alice.ID}
			return st.CreateProject(ctx, added)
		}, func(page []*tenancy.Project) bool {
			return slices.ContainsFunc(page, func(p *tenancy.Project) bool {
				return p.Name == "added"
			})
		}},

		{"UpdateProjectStatus", asAlice, func() error {
			return st.UpdateProjectStatus(ctx, kept.ID, tenancy.ProjectStatus{
				Status: tenancy.StatusFailed, Reason: "quota", ObservedGeneration: 1})
		}, func(page []*tenancy.Project) bool {
			p := byID(page, kept.ID)
			return p.Status == tenancy.StatusFailed && p.Reason == "quota" &&
				p.ObservedGeneration == 1
		}},

		{"SetProjectCondition", asAlice, func() error {
			return st.SetProjectCondition(ctx, kept.ID, tenancy.Condition{
				Type: "GrafanaReady", Status: "True", Reason: "Synced"})
		}, func(page []*tenancy.Project) bool {
			cs := byID(page, kept.ID).Conditions
			return len(cs) == 1 && cs[0].Type == "GrafanaReady" && cs[0].Reason == "Synced"
		}},

		{"AddMember", asBob, func() error {
			return st.AddMember(ctx, &tenancy.Member{ProjectID: kept.ID, UserID: bob.ID,
				Role: tenancy.RoleViewer})
		}, func(page []*tenancy.Project) bool { return byID(page, kept.ID) != nil }},

		{"RemoveMember", asBob, func() error {
			return st.RemoveMember(ctx, kept.ID, bob.ID)
		}, func(page []*tenancy.Project) bool { return byID(page, kept.ID) == nil }},

		{"MarkProjectDeleting", asAlice, func() error {
			return st.MarkProjectDeleting(ctx, added.ID)
		}, func(page []*tenancy.Project) bool {
			p := byID(page, added.ID)
			return p.Status == tenancy.StatusDeleting && p.Generation == 2
		}},

		{"DeleteProject", asAlice, func() error {
			return st.DeleteProject(ctx, added.ID)
		}, func(page []*tenancy.Project) bool { return byID(page, added.ID) == nil }},

		{"AnotherStoreOnTheFile", asAlice, func() error {
			return other.UpdateProjectStatus(ctx, kept.ID, tenancy.ProjectStatus{
				Status: tenancy.StatusReady, ObservedGeneration: 7})
		}, func(page []*tenancy.Project) bool {
			p := byID(page, kept.ID)
			return p.Status == tenancy.StatusReady && p.ObservedGeneration == 7
		}},

		{"BareSQL", tenancy.ProjectFilter{}, func() error {
			_, err := st.db.ExecContext(ctx,
				`UPDATE projects SET description = 'changed by hand' WHERE id = ?`, kept.ID)
			return err
		}, func(page []*tenancy.Project) bool {
			return byID(page, kept.ID).Description == "changed by hand"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			listed(t, st, c.as)
			before, hit := listed(t, st, c.as)
			if !hit {
				t.Fatal("a list read twice with no write between was read from the database twice")
			}
			if c.holds(before) {
				t.Fatal("the page shows the write before it is made")
			}

			wantErr(t, c.write(), nil, c.name)

			after, hit := listed(t, st, c.as)
			if hit {
				t.Error("the page after the write came from memory")
			}
			if !c.holds(after) {
				t.Errorf("the page read after %s does not show it", c.name)
			}
		})
	}
}

// TestSQLiteListCacheCopies changes every field of a served page and reads
// it again: what one caller does to its page never reaches another.
func TestSQLiteListCacheCopies(t *testing.T) {
	st := migrated(openSQLite)(t)
	alice := mustUser(t, st, "alice@example.com")
	p := mustProject(t, st, alice, "shop")
	wantErr(t, st.SetProjectCondition(context.Background(), p.ID, tenancy.Condition{
		Type: "ClusterReady", Status: "True", Reason: "Applied"}), nil, "set condition")
	f := tenancy.ProjectFilter{MemberID: alice.ID}

	for range 2 { // the first page read, then the one from memory
		page, _ := listed(t, st, f)
		page[0].Name = "mutated"
		page[0].Conditions[0].Reason = "Mutated"
		page[0] = nil
	}
	page, hit := listed(t, st, f)
	if !hit {
		t.Fatal("the third read came from the database")
	}
	if page[0] == nil || page[0].Name != "shop" || page[0].Conditions[0].Reason != "Applied" {
		t.Errorf("a caller's change reached the kept page: %+v", page[0])
	}
}

// TestSQLiteListCacheReopens breaks the data version connection: the next
// list is read from the database, and later ones are kept again.
func TestSQLiteListCacheReopens(t *testing.T) {
	st := migrated(openSQLite)(t)
	alice := mustUser(t, st, "alice@example.com")
	mustProject(t, st, alice, "shop")
	f := tenancy.ProjectFilter{MemberID: alice.ID}
	listed(t, st, f)

	st.lists.mu.Lock()
	wantErr(t, st.lists.conn.Close(), nil, "close data version connection")
	st.lists.mu.Unlock()

	page, _, err := st.ListProjects(context.Background(), f)
	if err != nil || len(page) != 1 {
		t.Fatalf("list with a broken version connection: %d projects, %v", len(page), err)
	}
	listed(t, st, f)
	if page, hit := listed(t, st, f); !hit || len(page) != 1 {
		t.Errorf("after reopening: hit %t with %d projects, want a hit with 1", hit, len(page))
	}
}

// TestSQLiteListCacheNeverOlderThanAWrite runs writers and readers at once.
// A reader notes the writes that have returned before it starts; its page
// must show all of them. Run it with -race.
func TestSQLiteListCacheNeverOlderThanAWrite(t *testing.T) {
	ctx := context.Background()
	st := migrated(openSQLite)(t)
	alice := mustUser(t, st, "alice@example.com")
	watched := mustProject(t, st, alice, "watched")
	f := tenancy.ProjectFilter{MemberID: alice.ID, Page: tenancy.Page{Limit: MaxLimit}}

	// Status writes, and projects created: all of these fit one page.
	const writes, creates = 150, MaxLimit - 1
	var (
		observed atomic.Int64 // the last ObservedGeneration written and returned
		created  atomic.Int64 // projects created and returned
		writing  sync.WaitGroup
		errs     = make(chan error, 6) // one at most from each goroutine
	)
	writing.Add(2)
	go func() {
		defer writing.Done()
		for i := int64(1); i <= writes; i++ {
			err := st.UpdateProjectStatus(ctx, watched.ID,
				tenancy.ProjectStatus{Status: tenancy.StatusReady, ObservedGeneration: i})
			if err != nil {
				errs <- err
				return
			}
			observed.Store(i)
		}
	}()
	go func() {
		defer writing.Done()
		for i := range creates {
			p := &tenancy.Project{Name: fmt.Sprintf("p-%03d", i),
				Namespace: fmt.Sprintf("canopy-p-%03d", i), OwnerID: alice.ID}
			if err := st.CreateProject(ctx, p); err != nil {
				errs <- err
				return
			}
			created.Add(1)
		}
	}()

	done := make(chan struct{})
	go func() { writing.Wait(); close(done) }()
	var reading sync.WaitGroup
	for range 4 {
		reading.Add(1)
		go func() {
			defer reading.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				err := readNoOlder(ctx, st, f, watched.ID, observed.Load(), created.Load())
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	go func() { reading.Wait(); writing.Wait(); close(errs) }()

	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	page, _, err := st.ListProjects(ctx, f)
	wantErr(t, err, nil, "list projects")
	if len(page) != creates+1 || byID(page, watched.ID).ObservedGeneration != writes {
		t.Errorf("final page: %d projects, want %d, and the last status", len(page), creates+1)
	}
}

// readNoOlder lists f and fails unless the page shows at least the
// observed generation on the watched project and created other projects.
func readNoOlder(
	ctx context.Context, st *Store, f tenancy.ProjectFilter, watched string,
	observed, created int64,
) error {
	page, _, err := st.ListProjects(ctx, f)
	if err != nil {
		return err
	}
	p := byID(page, watched)
	if p == nil {
		return fmt.Errorf("the watched project is missing")
	}
	if p.ObservedGeneration < observed {
		return fmt.Errorf("page shows observed generation %d after %d was written",
			p.ObservedGeneration, observed)
	}
	if got := int64(len(page) - 1); got < created {
		return fmt.Errorf("page shows %d created projects after %d were created", got, created)
	}
	return nil
}
