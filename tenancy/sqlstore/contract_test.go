package sqlstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
)

// testContract checks the behaviour tenancy.Store promises, on a store that
// newStore opens empty and migrated. It runs unchanged on every backend.
func testContract(t *testing.T, newStore func(t testing.TB) *Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, st *Store)
	}{
		{"Users", contractUsers},
		{"ProjectCreateAndGet", contractProjectCreateAndGet},
		{"ProjectVerbatimText", contractProjectVerbatimText},
		{"UnstorableText", contractUnstorableText},
		{"ProjectStatus", contractProjectStatus},
		{"ProjectConditions", contractProjectConditions},
		{"ProjectDeleteCascades", contractProjectDeleteCascades},
		{"ListProjectsPagination", contractListProjectsPagination},
		{"ListProjectsByMember", contractListProjectsByMember},
		{"Apps", contractApps},
		{"ListAppsPagination", contractListAppsPagination},
		{"Members", contractMembers},
		{"ProjectTokens", contractProjectTokens},
		{"RefreshTokens", contractRefreshTokens},
		{"SpendRefreshTokenConcurrently", contractSpendConcurrently},
		{"SigningKeys", contractSigningKeys},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newStore(t))
		})
	}
}

// wantErr fails t unless err matches target (nil included).
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func mustUser(t *testing.T, st *Store, email string) *tenancy.User {
	t.Helper()
	u := &tenancy.User{Email: email, Name: "User " + email, PasswordHash: "$argon2id$hash"}
	wantErr(t, st.CreateUser(context.Background(), u), nil, "create user")
	return u
}

func mustProject(t *testing.T, st *Store, owner *tenancy.User, name string) *tenancy.Project {
	t.Helper()
	p := &tenancy.Project{Name: name, Namespace: "canopy-" + name, OwnerID: owner.ID}
	wantErr(t, st.CreateProject(context.Background(), p), nil, "create project "+name)
	return p
}

func mustApp(t *testing.T, st *Store, projectID, name string) *tenancy.App {
	t.Helper()
	a := &tenancy.App{ProjectID: projectID, Name: name, Image: "nginx:1.27", TargetPort: 8080,
		Replicas: 2}
	wantErr(t, st.CreateApp(context.Background(), a), nil, "create app "+name)
	return a
}

// fixedClock makes the store's clock return at, then step forward by step
// on each call (a zero step keeps every timestamp equal).
func fixedClock(st *Store, at time.Time, step time.Duration) {
	var mu sync.Mutex
	st.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := at
		at = at.Add(step)
		return now
	}
}

func contractUsers(t *testing.T, st *Store) {
	ctx := context.Background()
	u := &tenancy.User{Email: "Alice@Example.COM", Name: "Alice", PasswordHash: "h1"}
	wantErr(t, st.CreateUser(ctx, u), nil, "create user")
	if u.ID == "" || u.CreatedAt.IsZero() || u.CreatedAt.Location() != time.UTC {
		t.Fatalf("create user filled ID=%q CreatedAt=%v, want an ID and a UTC time",
			u.ID, u.CreatedAt)
	}
	if u.Email != "alice@example.com" {
		t.Errorf("stored email = %q, want it lower-cased", u.Email)
	}

	byID, err := st.UserByID(ctx, u.ID)
	wantErr(t, err, nil, "user by id")
	if !reflect.DeepEqual(byID, u) {
		t.Errorf("user by id = %+v, want %+v", byID, u)
	}
	for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM", "aLiCe@eXaMpLe.cOm"} {
		got, err := st.UserByEmail(ctx, email)
		wantErr(t, err, nil, "user by email "+email)
		if got.ID != u.ID {
			t.Errorf("user by email %q = %s, want %s", email, got.ID, u.ID)
		}
	}

	dup := &tenancy.User{Email: "ALICE@example.com", Name: "Other", PasswordHash: "h2"}
	wantErr(t, st.CreateUser(ctx, dup), tenancy.ErrConflict, "create user with taken email")

	_, err = st.UserByID(ctx, "no-such-id")
	wantErr(t, err, tenancy.ErrNotFound, "user by unknown id")
	_, err = st.UserByEmail(ctx, "bob@example.com")
	wantErr(t, err, tenancy.ErrNotFound, "user by unknown email")
	wantErr(t, st.Ping(ctx), nil, "ping")
}

func contractProjectCreateAndGet(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	p := &tenancy.Project{Name: "shop", Description: "the shop", Namespace: "canopy-shop",
		OwnerID: owner.ID}
	wantErr(t, st.CreateProject(ctx, p), nil, "create project")
	if p.ID == "" || p.Generation != 1 || p.Status != tenancy.StatusProvisioning ||
		!p.CreatedAt.Equal(p.UpdatedAt) {
		t.Fatalf("create project filled %+v", p)
	}

	got, err := st.ProjectByID(ctx, p.ID)
	wantErr(t, err, nil, "project by id")
	if !reflect.DeepEqual(got, p) {
		t.Errorf("project by id = %+v, want %+v", got, p)
	}

	// The owner is a member, in the same transaction.
	m, err := st.Member(ctx, p.ID, owner.ID)
	wantErr(t, err, nil, "owner membership")
	if m.Role != tenancy.RoleOwner || m.Email != owner.Email || m.Name != owner.Name {
		t.Errorf("owner membership = %+v", m)
	}

	// Names and namespaces are unique; owners must exist.
	taken := &tenancy.Project{Name: "shop", Namespace: "other-shop", OwnerID: owner.ID}
	wantErr(t, st.CreateProject(ctx, taken), tenancy.ErrConflict, "create project, taken name")
	clash := &tenancy.Project{Name: "shop2", Namespace: "canopy-shop", OwnerID: owner.ID}
	wantErr(t, st.CreateProject(ctx, clash), tenancy.ErrConflict,
		"create project, taken namespace")
	orphan := &tenancy.Project{Name: "orphan", Namespace: "canopy-orphan", OwnerID: "nobody"}
	wantErr(t, st.CreateProject(ctx, orphan), tenancy.ErrNotFound, "create project, unknown owner")
	noNS := &tenancy.Project{Name: "nons", OwnerID: owner.ID}
	wantErr(t, st.CreateProject(ctx, noNS), tenancy.ErrInvalid, "create project, no namespace")

	// A failed create leaves no project and no membership behind.
	all, _, err := st.ListProjects(ctx, tenancy.ProjectFilter{})
	wantErr(t, err, nil, "list projects")
	if len(all) != 1 {
		t.Errorf("after failed creates, %d projects are stored, want 1", len(all))
	}
	members, err := st.ListMembers(ctx, p.ID)
	wantErr(t, err, nil, "list members")
	if len(members) != 1 {
		t.Errorf("project has %d members, want the owner only", len(members))
	}

	_, err = st.ProjectByID(ctx, "no-such-project")
	wantErr(t, err, tenancy.ErrNotFound, "project by unknown id")
}

// contractProjectVerbatimText stores SQL metacharacters and other awkward
// text, and reads back the same bytes: the store never builds SQL from values.
func contractProjectVerbatimText(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "o'brien+test@example.com")
	texts := []string{
		"x'; DROP TABLE projects; --",
		`"quoted" \backslash\ 100% _under_`,
		"?, $1, :name, @p -- ? /* */",
		"ünïcödé ✓ 日本",
		"line\nbreak\ttab",
	}
	for i, text := range texts {
		p := &tenancy.Project{Name: text, Description: text, Namespace: fmt.Sprintf("ns-%d", i),
			OwnerID: owner.ID}
		wantErr(t, st.CreateProject(ctx, p), nil, "create project")
		got, err := st.ProjectByID(ctx, p.ID)
		wantErr(t, err, nil, "project by id")
		if got.Name != text || got.Description != text {
			t.Errorf("stored %q, read back name %q description %q",
				text, got.Name, got.Description)
		}
		a := &tenancy.App{ProjectID: p.ID, Name: text, Image: text, TargetPort: 80,
			Env: map[string]string{text: text}}
		wantErr(t, st.CreateApp(ctx, a), nil, "create app")
		gotApp, err := st.AppByID(ctx, p.ID, a.ID)
		wantErr(t, err, nil, "app by id")
		if gotApp.Name != text || gotApp.Env[text] != text {
			t.Errorf("stored app %q, read back %q env %v", text, gotApp.Name, gotApp.Env)
		}
	}
	got, err := st.UserByEmail(ctx, "O'Brien+test@example.com")
	wantErr(t, err, nil, "user by email with a quote")
	if got.ID != owner.ID {
		t.Errorf("user by email with a quote found %s", got.ID)
	}

	// Every table is still there and holds what it should.
	all, _, err := st.ListProjects(ctx, tenancy.ProjectFilter{})
	wantErr(t, err, nil, "list projects")
	if len(all) != len(texts) {
		t.Errorf("listed %d projects, want %d", len(all), len(texts))
	}
}

// contractUnstorableText sends text PostgreSQL cannot hold (invalid UTF-8,
// NUL bytes): both backends refuse it with ErrInvalid and store nothing.
func contractUnstorableText(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	for _, bad := range []string{"\xff\xfe", "nul\x00byte", "ok-then-\xc3"} {
		u := &tenancy.User{Email: "x@example.com", Name: bad, PasswordHash: "h"}
		wantErr(t, st.CreateUser(ctx, u), tenancy.ErrInvalid, "create user named "+bad)
		u = &tenancy.User{Email: bad + "@example.com", Name: "x", PasswordHash: "h"}
		wantErr(t, st.CreateUser(ctx, u), tenancy.ErrInvalid, "create user with email "+bad)
		_, err := st.UserByEmail(ctx, bad)
		wantErr(t, err, tenancy.ErrInvalid, "user by email "+bad)
		p := &tenancy.Project{Name: "p", Description: bad, Namespace: "canopy-p", OwnerID: owner.ID}
		wantErr(t, st.CreateProject(ctx, p), tenancy.ErrInvalid, "create project with "+bad)
		_, err = st.ProjectByID(ctx, bad)
		wantErr(t, err, tenancy.ErrInvalid, "project by id "+bad)
	}
	p := mustProject(t, st, owner, "shop")
	a := &tenancy.App{ProjectID: p.ID, Name: "api", Image: "x", TargetPort: 80,
		Env: map[string]string{"KEY": "nul\x00"}}
	wantErr(t, st.CreateApp(ctx, a), tenancy.ErrInvalid, "create app with a NUL in env")

	all, _, err := st.ListProjects(ctx, tenancy.ProjectFilter{})
	wantErr(t, err, nil, "list projects")
	apps, _, err := st.ListApps(ctx, p.ID, tenancy.Page{})
	wantErr(t, err, nil, "list apps")
	if len(all) != 1 || len(apps) != 0 {
		t.Errorf("refused writes stored %d projects and %d apps, want 1 and 0", len(all), len(apps))
	}
	_, err = st.UserByEmail(ctx, "x@example.com")
	wantErr(t, err, tenancy.ErrNotFound, "refused user")
}

func contractProjectStatus(t *testing.T, st *Store) {
	ctx := context.Background()
	p := mustProject(t, st, mustUser(t, st, "a@example.com"), "web")

	wantErr(t, st.SetProjectCondition(ctx, p.ID, tenancy.Condition{
		Type: "ClusterReady", Status: "True"}), nil, "set condition")
	st2 := tenancy.ProjectStatus{Status: tenancy.StatusFailed, Reason: "quota exceeded",
		ObservedGeneration: 1}
	wantErr(t, st.UpdateProjectStatus(ctx, p.ID, st2), nil, "update project status")

	got, err := st.ProjectByID(ctx, p.ID)
	wantErr(t, err, nil, "project by id")
	if got.Status != tenancy.StatusFailed || got.Reason != "quota exceeded" ||
		got.ObservedGeneration != 1 {
		t.Errorf("after status update: %+v", got)
	}
	if got.Generation != 1 || got.Name != "web" || got.Namespace != "canopy-web" ||
		len(got.Conditions) != 1 {
		t.Errorf("status update changed the spec or conditions: %+v", got)
	}

	wantErr(t, st.MarkProjectDeleting(ctx, p.ID), nil, "mark deleting")
	got, err = st.ProjectByID(ctx, p.ID)
	wantErr(t, err, nil, "project by id")
	if got.Status != tenancy.StatusDeleting || got.Generation != 2 {
		t.Errorf("after mark deleting: status %s generation %d, want deleting 2",
			got.Status, got.Generation)
	}

	wantErr(t, st.UpdateProjectStatus(ctx, "nope", st2), tenancy.ErrNotFound,
		"update status of unknown project")
	wantErr(t, st.MarkProjectDeleting(ctx, "nope"), tenancy.ErrNotFound,
		"mark unknown project deleting")
}

func contractProjectConditions(t *testing.T, st *Store) {
	ctx := context.Background()
	p := mustProject(t, st, mustUser(t, st, "a@example.com"), "web")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(time.Minute)

	set := func(c tenancy.Condition) []tenancy.Condition {
		t.Helper()
		wantErr(t, st.SetProjectCondition(ctx, p.ID, c), nil, "set condition "+c.Type)
		got, err := st.ProjectByID(ctx, p.ID)
		wantErr(t, err, nil, "project by id")
		return got.Conditions
	}

	cluster := tenancy.Condition{Type: "ClusterReady", Status: "False", Reason: "NoCluster",
		Message: "no cluster is configured", LastTransitionTime: t0}
	if got := set(cluster); !reflect.DeepEqual(got, []tenancy.Condition{cluster}) {
		t.Fatalf("conditions = %+v", got)
	}

	// Another type is added beside the first.
	grafana := tenancy.Condition{Type: "GrafanaReady", Status: "True", LastTransitionTime: t0}
	if got := set(grafana); !reflect.DeepEqual(got, []tenancy.Condition{cluster, grafana}) {
		t.Fatalf("conditions = %+v", got)
	}

	// Same status, new message: replaced, transition time kept.
	sameStatus := cluster
	sameStatus.Message, sameStatus.LastTransitionTime = "still no cluster", t1
	want := sameStatus
	want.LastTransitionTime = t0
	if got := set(sameStatus); !reflect.DeepEqual(got, []tenancy.Condition{want, grafana}) {
		t.Fatalf("conditions = %+v, want transition time kept", got)
	}

	// New status: the transition time moves.
	flipped := tenancy.Condition{Type: "ClusterReady", Status: "True", Reason: "Applied",
		LastTransitionTime: t1}
	if got := set(flipped); !reflect.DeepEqual(got, []tenancy.Condition{flipped, grafana}) {
		t.Fatalf("conditions = %+v", got)
	}

	// Setting the same condition again writes nothing.
	before, err := st.ProjectByID(ctx, p.ID)
	wantErr(t, err, nil, "project by id")
	fixedClock(st, time.Now().Add(time.Hour), time.Second)
	set(flipped)
	after, err := st.ProjectByID(ctx, p.ID)
	wantErr(t, err, nil, "project by id")
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("an unchanged condition moved UpdatedAt from %v to %v",
			before.UpdatedAt, after.UpdatedAt)
	}

	// A zero transition time means now.
	fixedClock(st, t1.Add(time.Hour), 0)
	got := set(tenancy.Condition{Type: "Fresh", Status: "Unknown"})
	if !got[2].LastTransitionTime.Equal(t1.Add(time.Hour)) {
		t.Errorf("zero transition time stored as %v", got[2].LastTransitionTime)
	}

	wantErr(t, st.SetProjectCondition(ctx, "nope", cluster), tenancy.ErrNotFound,
		"set condition on unknown project")
}

func contractProjectDeleteCascades(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	viewer := mustUser(t, st, "viewer@example.com")
	doomed := mustProject(t, st, owner, "doomed")
	kept := mustProject(t, st, owner, "kept")

	var apps []*tenancy.App
	for _, p := range []*tenancy.Project{doomed, kept} {
		apps = append(apps, mustApp(t, st, p.ID, "api"))
		wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID,
			Role: tenancy.RoleViewer}), nil, "add member")
		tok := &tenancy.ProjectToken{ProjectID: p.ID, Name: "grafana",
			Hash: []byte("hash-" + p.Name)}
		wantErr(t, st.CreateProjectToken(ctx, tok), nil, "create token")
	}

	wantErr(t, st.DeleteProject(ctx, doomed.ID), nil, "delete project")

	_, err := st.ProjectByID(ctx, doomed.ID)
	wantErr(t, err, tenancy.ErrNotFound, "deleted project")
	_, err = st.AppByID(ctx, doomed.ID, apps[0].ID)
	wantErr(t, err, tenancy.ErrNotFound, "app of deleted project")
	_, err = st.Member(ctx, doomed.ID, viewer.ID)
	wantErr(t, err, tenancy.ErrNotFound, "member of deleted project")
	members, err := st.ListMembers(ctx, doomed.ID)
	wantErr(t, err, nil, "list members of deleted project")
	tokens, err := st.ListProjectTokens(ctx, doomed.ID)
	wantErr(t, err, nil, "list tokens of deleted project")
	if len(members) != 0 || len(tokens) != 0 {
		t.Errorf("deleted project keeps %d members and %d tokens", len(members), len(tokens))
	}
	_, err = st.ProjectTokenByHash(ctx, []byte("hash-doomed"))
	wantErr(t, err, tenancy.ErrNotFound, "token of deleted project")

	// The other project and the users are untouched.
	_, err = st.AppByID(ctx, kept.ID, apps[1].ID)
	wantErr(t, err, nil, "app of kept project")
	_, err = st.Member(ctx, kept.ID, viewer.ID)
	wantErr(t, err, nil, "member of kept project")
	_, err = st.ProjectTokenByHash(ctx, []byte("hash-kept"))
	wantErr(t, err, nil, "token of kept project")
	_, err = st.UserByID(ctx, viewer.ID)
	wantErr(t, err, nil, "viewer")

	wantErr(t, st.DeleteProject(ctx, doomed.ID), tenancy.ErrNotFound, "delete again")
}

// listAll pages through ListProjects with limit and returns every project.
func listAll(t *testing.T, st *Store, f tenancy.ProjectFilter) ([]*tenancy.Project, int) {
	t.Helper()
	var (
		all   []*tenancy.Project
		pages int
	)
	for {
		page, next, err := st.ListProjects(context.Background(), f)
		wantErr(t, err, nil, "list projects")
		if len(page) > limit(f.Page.Limit) {
			t.Fatalf("page of %d projects, limit %d", len(page), f.Page.Limit)
		}
		all = append(all, page...)
		pages++
		if next == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		f.Page.Cursor = next
	}
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = id(it)
	}
	return out
}

func projectID(p *tenancy.Project) string { return p.ID }

func contractListProjectsPagination(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")

	// 105 projects in bursts of 7 sharing one timestamp, so that ties on
	// created_at must be broken by id.
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	type key struct {
		at time.Time
		id string
	}
	var want []key
	for i := range 105 {
		fixedClock(st, base.Add(time.Duration(i/7)*time.Second), 0)
		p := mustProject(t, st, owner, fmt.Sprintf("p%03d", i))
		want = append(want, key{p.CreatedAt, p.ID})
	}
	slices.SortFunc(want, func(a, b key) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	wantIDs := ids(want, func(k key) string { return k.id })

	for _, lim := range []int{1, 7, 10, 20, 100} {
		got, pages := listAll(t, st, tenancy.ProjectFilter{Page: tenancy.Page{Limit: lim}})
		if gotIDs := ids(got, projectID); !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("limit %d: pages hold %d projects out of order or with gaps or repeats",
				lim, len(gotIDs))
		}
		if wantPages := (105 + lim - 1) / lim; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", lim, pages, wantPages)
		}
	}

	// Default and maximum page sizes.
	for _, c := range []struct{ limit, want int }{{0, 20}, {-5, 20}, {1000, 100}} {
		f := tenancy.ProjectFilter{Page: tenancy.Page{Limit: c.limit}}
		page, next, err := st.ListProjects(ctx, f)
		wantErr(t, err, nil, "list projects")
		if len(page) != c.want || next == "" {
			t.Errorf("limit %d: page of %d and cursor %q, want %d and a cursor",
				c.limit, len(page), next, c.want)
		}
	}

	// A project created after the first page was read shows up on a later
	// page, and nothing is repeated.
	first, next, err := st.ListProjects(ctx, tenancy.ProjectFilter{Page: tenancy.Page{Limit: 50}})
	wantErr(t, err, nil, "list projects")
	fixedClock(st, base.Add(time.Hour), 0)
	late := mustProject(t, st, owner, "late")
	rest, _ := listAll(t, st, tenancy.ProjectFilter{Page: tenancy.Page{Limit: 50, Cursor: next}})
	gotIDs := append(ids(first, projectID), ids(rest, projectID)...)
	if !slices.Equal(gotIDs, append(slices.Clone(wantIDs), late.ID)) {
		t.Errorf("a project created while paging was lost or repeated")
	}

	for _, bad := range []string{"not-a-cursor", "////", "aGVsbG8", cursorOf("x", "")} {
		_, _, err := st.ListProjects(ctx, tenancy.ProjectFilter{Page: tenancy.Page{Cursor: bad}})
		wantErr(t, err, tenancy.ErrInvalid, "list with cursor "+bad)
	}
}

// cursorOf encodes a cursor by hand, as a client could forge one.
func cursorOf(stamp, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(stamp + " " + id))
}

func contractListProjectsByMember(t *testing.T, st *Store) {
	ctx := context.Background()
	alice := mustUser(t, st, "alice@example.com")
	bob := mustUser(t, st, "bob@example.com")
	carol := mustUser(t, st, "carol@example.com")

	var aliceWants, bobWants []string
	for i := range 12 {
		owner := alice
		if i%3 == 0 {
			owner = bob
		}
		p := mustProject(t, st, owner, fmt.Sprintf("team-%02d", i))
		if owner == alice {
			aliceWants = append(aliceWants, p.ID)
		} else {
			bobWants = append(bobWants, p.ID)
		}
		if owner == alice && i%4 == 1 { // bob is a viewer of some of alice's projects
			wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: bob.ID,
				Role: tenancy.RoleViewer}), nil, "add member")
			bobWants = append(bobWants, p.ID)
		}
	}
	// An owner whose membership row is gone still sees the project.
	wantErr(t, st.RemoveMember(ctx, aliceWants[0], alice.ID), nil, "remove owner membership")

	for _, c := range []struct {
		user *tenancy.User
		want []string
	}{{alice, aliceWants}, {bob, bobWants}, {carol, nil}} {
		got, _ := listAll(t, st, tenancy.ProjectFilter{MemberID: c.user.ID,
			Page: tenancy.Page{Limit: 3}})
		gotIDs := ids(got, projectID)
		slices.Sort(gotIDs)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(gotIDs, want) {
			t.Errorf("%s sees %d projects, want %d", c.user.Email, len(gotIDs), len(want))
		}
	}
}

func contractApps(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	p := mustProject(t, st, owner, "shop")
	other := mustProject(t, st, owner, "blog")

	a := &tenancy.App{ProjectID: p.ID, Name: "api", Image: "ghcr.io/acme/api:1.0",
		TargetPort: 8080, Replicas: 3, Env: map[string]string{"LOG_LEVEL": "debug", "EMPTY": ""}}
	wantErr(t, st.CreateApp(ctx, a), nil, "create app")
	if a.ID == "" || a.Generation != 1 || a.Status != tenancy.StatusProvisioning {
		t.Fatalf("create app filled %+v", a)
	}
	got, err := st.AppByID(ctx, p.ID, a.ID)
	wantErr(t, err, nil, "app by id")
	if !reflect.DeepEqual(got, a) {
		t.Errorf("app by id = %+v, want %+v", got, a)
	}

	dup := &tenancy.App{ProjectID: p.ID, Name: "api", Image: "x", TargetPort: 80}
	wantErr(t, st.CreateApp(ctx, dup), tenancy.ErrConflict, "create app, taken name")
	elsewhere := &tenancy.App{ProjectID: other.ID, Name: "api", Image: "x", TargetPort: 80}
	wantErr(t, st.CreateApp(ctx, elsewhere), nil, "same app name in another project")
	orphan := &tenancy.App{ProjectID: "nope", Name: "api", Image: "x", TargetPort: 80}
	wantErr(t, st.CreateApp(ctx, orphan), tenancy.ErrNotFound, "create app, unknown project")
	_, err = st.AppByID(ctx, other.ID, a.ID)
	wantErr(t, err, tenancy.ErrNotFound, "app by id through another project")

	// Spec changes: nil keeps a field; each change bumps Generation.
	image, replicas, zero := "ghcr.io/acme/api:1.1", 5, 0
	steps := []struct {
		image         *string
		replicas      *int
		wantImage     string
		wantReplicas  int
		wantGenerated int64
	}{
		{&image, nil, image, 3, 2},
		{nil, &replicas, image, 5, 3},
		{nil, &zero, image, 0, 4},
	}
	for _, s := range steps {
		updated, err := st.UpdateAppSpec(ctx, p.ID, a.ID, s.image, s.replicas)
		wantErr(t, err, nil, "update app spec")
		if updated.Image != s.wantImage || updated.Replicas != s.wantReplicas ||
			updated.Generation != s.wantGenerated {
			t.Errorf("after update: image %q replicas %d generation %d, want %q %d %d",
				updated.Image, updated.Replicas, updated.Generation,
				s.wantImage, s.wantReplicas, s.wantGenerated)
		}
		stored, err := st.AppByID(ctx, p.ID, a.ID)
		wantErr(t, err, nil, "app by id")
		if !reflect.DeepEqual(stored, updated) {
			t.Errorf("update returned %+v, store holds %+v", updated, stored)
		}
	}
	_, err = st.UpdateAppSpec(ctx, other.ID, a.ID, &image, nil)
	wantErr(t, err, tenancy.ErrNotFound, "update app through another project")

	// Status from the reconciler.
	cond := tenancy.Condition{Type: "Available", Status: "True", Reason: "ReplicasAvailable",
		LastTransitionTime: time.Date(2026, 1, 1, 0, 0, 0, 123456000, time.UTC)}
	status := tenancy.AppStatus{Status: tenancy.StatusReady, AvailableReplicas: 2,
		Conditions: []tenancy.Condition{cond}, ObservedGeneration: 4}
	wantErr(t, st.UpdateAppStatus(ctx, a.ID, status), nil, "update app status")
	got, err = st.AppByID(ctx, p.ID, a.ID)
	wantErr(t, err, nil, "app by id")
	if got.Status != tenancy.StatusReady || got.AvailableReplicas != 2 ||
		got.ObservedGeneration != 4 || !reflect.DeepEqual(got.Conditions, status.Conditions) ||
		got.Generation != 4 || got.Image != image {
		t.Errorf("after status update: %+v", got)
	}
	wantErr(t, st.UpdateAppStatus(ctx, "nope", status), tenancy.ErrNotFound,
		"status of unknown app")

	wantErr(t, st.MarkAppDeleting(ctx, other.ID, a.ID), tenancy.ErrNotFound,
		"mark deleting through another project")
	wantErr(t, st.MarkAppDeleting(ctx, p.ID, a.ID), nil, "mark app deleting")
	got, err = st.AppByID(ctx, p.ID, a.ID)
	wantErr(t, err, nil, "app by id")
	if got.Status != tenancy.StatusDeleting || got.Generation != 5 {
		t.Errorf("after mark deleting: status %s generation %d", got.Status, got.Generation)
	}

	wantErr(t, st.DeleteApp(ctx, other.ID, a.ID), tenancy.ErrNotFound,
		"delete through another project")
	wantErr(t, st.DeleteApp(ctx, p.ID, a.ID), nil, "delete app")
	_, err = st.AppByID(ctx, p.ID, a.ID)
	wantErr(t, err, tenancy.ErrNotFound, "deleted app")
	wantErr(t, st.DeleteApp(ctx, p.ID, a.ID), tenancy.ErrNotFound, "delete app again")
}

func contractListAppsPagination(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	p := mustProject(t, st, owner, "shop")
	other := mustProject(t, st, owner, "blog")
	mustApp(t, st, other.ID, "noise")

	fixedClock(st, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 0) // every app ties
	var want []string
	for i := range 25 {
		want = append(want, mustApp(t, st, p.ID, fmt.Sprintf("app-%02d", i)).ID)
	}
	slices.Sort(want) // equal timestamps: id order

	var (
		got    []string
		cursor string
	)
	for range 10 {
		page, next, err := st.ListApps(ctx, p.ID, tenancy.Page{Limit: 10, Cursor: cursor})
		wantErr(t, err, nil, "list apps")
		got = append(got, ids(page, func(a *tenancy.App) string { return a.ID })...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged apps: %d, out of order or with gaps or repeats (want %d)",
			len(got), len(want))
	}
	_, _, err := st.ListApps(ctx, p.ID, tenancy.Page{Cursor: "%%%"})
	wantErr(t, err, tenancy.ErrInvalid, "list apps with a bad cursor")
	none, next, err := st.ListApps(ctx, "nope", tenancy.Page{})
	wantErr(t, err, nil, "list apps of unknown project")
	if len(none) != 0 || next != "" {
		t.Errorf("unknown project lists %d apps", len(none))
	}
}

func contractMembers(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	viewer := mustUser(t, st, "viewer@example.com")
	p := mustProject(t, st, owner, "shop")

	m := &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID, Role: tenancy.RoleViewer}
	wantErr(t, st.AddMember(ctx, m), nil, "add member")
	wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID,
		Role: tenancy.RoleOwner}), tenancy.ErrConflict, "add member twice")
	wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: "nobody",
		Role: tenancy.RoleViewer}), tenancy.ErrNotFound, "add unknown user")
	wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: "nope", UserID: viewer.ID,
		Role: tenancy.RoleViewer}), tenancy.ErrNotFound, "add to unknown project")
	wantErr(t, st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: owner.ID,
		Role: "admin"}), tenancy.ErrInvalid, "add with unknown role")

	got, err := st.Member(ctx, p.ID, viewer.ID)
	wantErr(t, err, nil, "member")
	want := &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID, Email: viewer.Email,
		Name: viewer.Name, Role: tenancy.RoleViewer, CreatedAt: m.CreatedAt}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("member = %+v, want %+v", got, want)
	}

	list, err := st.ListMembers(ctx, p.ID)
	wantErr(t, err, nil, "list members")
	if len(list) != 2 || list[0].UserID != owner.ID || list[0].Role != tenancy.RoleOwner ||
		list[1].UserID != viewer.ID {
		t.Errorf("members = %+v, want the owner then the viewer", list)
	}

	wantErr(t, st.RemoveMember(ctx, p.ID, viewer.ID), nil, "remove member")
	_, err = st.Member(ctx, p.ID, viewer.ID)
	wantErr(t, err, tenancy.ErrNotFound, "removed member")
	wantErr(t, st.RemoveMember(ctx, p.ID, viewer.ID), tenancy.ErrNotFound, "remove again")
}

func contractProjectTokens(t *testing.T, st *Store) {
	ctx := context.Background()
	owner := mustUser(t, st, "owner@example.com")
	p := mustProject(t, st, owner, "shop")
	other := mustProject(t, st, owner, "blog")

	tok := &tenancy.ProjectToken{ProjectID: p.ID, Name: "grafana", Hash: []byte{0, 1, 2, 0xff}}
	wantErr(t, st.CreateProjectToken(ctx, tok), nil, "create token")
	second := &tenancy.ProjectToken{ProjectID: p.ID, Name: "ci", Hash: []byte("second")}
	wantErr(t, st.CreateProjectToken(ctx, second), nil, "create second token")
	wantErr(t, st.CreateProjectToken(ctx, &tenancy.ProjectToken{ProjectID: "nope", Name: "x",
		Hash: []byte("x")}), tenancy.ErrNotFound, "token for unknown project")

	got, err := st.ProjectTokenByHash(ctx, []byte{0, 1, 2, 0xff})
	wantErr(t, err, nil, "token by hash")
	if !reflect.DeepEqual(got, tok) {
		t.Errorf("token by hash = %+v, want %+v", got, tok)
	}
	_, err = st.ProjectTokenByHash(ctx, []byte{0, 1, 2})
	wantErr(t, err, tenancy.ErrNotFound, "token by a prefix of the hash")

	list, err := st.ListProjectTokens(ctx, p.ID)
	wantErr(t, err, nil, "list tokens")
	if len(list) != 2 || list[0].ID != tok.ID || list[1].ID != second.ID {
		t.Fatalf("tokens = %+v", list)
	}
	for _, l := range list {
		if l.Hash != nil {
			t.Errorf("token %s listed with its hash", l.ID)
		}
	}

	wantErr(t, st.DeleteProjectToken(ctx, other.ID, tok.ID), tenancy.ErrNotFound,
		"delete through another project")
	wantErr(t, st.DeleteProjectToken(ctx, p.ID, tok.ID), nil, "delete token")
	_, err = st.ProjectTokenByHash(ctx, tok.Hash)
	wantErr(t, err, tenancy.ErrNotFound, "deleted token")
	wantErr(t, st.DeleteProjectToken(ctx, p.ID, tok.ID), tenancy.ErrNotFound, "delete again")
}

func contractRefreshTokens(t *testing.T, st *Store) {
	ctx := context.Background()
	u := mustUser(t, st, "a@example.com")
	expires := time.Now().Add(24 * time.Hour)
	newToken := func(family, hash string) *tenancy.RefreshToken {
		rt := &tenancy.RefreshToken{UserID: u.ID, FamilyID: family, Hash: []byte(hash),
			ExpiresAt: expires}
		wantErr(t, st.CreateRefreshToken(ctx, rt), nil, "create refresh token")
		return rt
	}
	first := newToken("fam-1", "h1")
	second := newToken("fam-1", "h2")
	elsewhere := newToken("fam-2", "h3")
	wantErr(t, st.CreateRefreshToken(ctx, &tenancy.RefreshToken{UserID: "nobody", FamilyID: "f",
		Hash: []byte("h4"), ExpiresAt: expires}), tenancy.ErrNotFound, "token of unknown user")
	wantErr(t, st.CreateRefreshToken(ctx, &tenancy.RefreshToken{UserID: u.ID, FamilyID: "f",
		Hash: []byte("h1"), ExpiresAt: expires}), tenancy.ErrConflict, "token with a taken hash")

	got, err := st.RefreshTokenByHash(ctx, []byte("h1"))
	wantErr(t, err, nil, "token by hash")
	if !reflect.DeepEqual(got, first) {
		t.Errorf("token by hash = %+v, want %+v", got, first)
	}
	_, err = st.RefreshTokenByHash(ctx, []byte("nope"))
	wantErr(t, err, tenancy.ErrNotFound, "unknown hash")

	spentAt := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	wantErr(t, st.SpendRefreshToken(ctx, first.ID, spentAt), nil, "spend")
	wantErr(t, st.SpendRefreshToken(ctx, first.ID, spentAt), tenancy.ErrNotFound, "spend twice")
	wantErr(t, st.SpendRefreshToken(ctx, "nope", spentAt), tenancy.ErrNotFound, "spend unknown")
	got, err = st.RefreshTokenByHash(ctx, []byte("h1"))
	wantErr(t, err, nil, "token by hash")
	if got.SpentAt == nil || !got.SpentAt.Equal(spentAt) || got.RevokedAt != nil {
		t.Errorf("spent token: spent %v revoked %v", got.SpentAt, got.RevokedAt)
	}

	// Revoking a family revokes every token in it, spent or not, and no other.
	revokedAt := spentAt.Add(time.Minute)
	wantErr(t, st.RevokeRefreshFamily(ctx, "fam-1", revokedAt), nil, "revoke family")
	for _, rt := range []*tenancy.RefreshToken{first, second} {
		got, err := st.RefreshTokenByHash(ctx, rt.Hash)
		wantErr(t, err, nil, "token by hash")
		if got.RevokedAt == nil || !got.RevokedAt.Equal(revokedAt) {
			t.Errorf("token %s of the revoked family: revoked %v", rt.Hash, got.RevokedAt)
		}
	}
	wantErr(t, st.SpendRefreshToken(ctx, second.ID, spentAt), tenancy.ErrNotFound,
		"spend a revoked token")
	got, err = st.RefreshTokenByHash(ctx, elsewhere.Hash)
	wantErr(t, err, nil, "token by hash")
	if got.RevokedAt != nil {
		t.Errorf("revoking fam-1 revoked a fam-2 token")
	}
	wantErr(t, st.RevokeRefreshFamily(ctx, "no-such-family", revokedAt), nil,
		"revoke unknown family")
	wantErr(t, st.SpendRefreshToken(ctx, elsewhere.ID, spentAt), nil, "spend other family")
}

// contractSpendConcurrently spends one token from many goroutines at once:
// exactly one may win.
func contractSpendConcurrently(t *testing.T, st *Store) {
	ctx := context.Background()
	u := mustUser(t, st, "a@example.com")
	for round := range 5 {
		rt := &tenancy.RefreshToken{UserID: u.ID, FamilyID: "fam",
			Hash: fmt.Appendf(nil, "hash-%d", round), ExpiresAt: time.Now().Add(time.Hour)}
		wantErr(t, st.CreateRefreshToken(ctx, rt), nil, "create refresh token")

		const racers = 16
		errs := make(chan error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				<-start
				errs <- st.SpendRefreshToken(ctx, rt.ID, time.Now())
			})
		}
		close(start)
		wg.Wait()
		close(errs)

		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, tenancy.ErrNotFound):
				t.Fatalf("concurrent spend: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d concurrent spends of one token succeeded, want 1", round, wins)
		}
	}
}

func contractSigningKeys(t *testing.T, st *Store) {
	ctx := context.Background()
	keys, err := st.SigningKeys(ctx)
	wantErr(t, err, nil, "signing keys of an empty store")
	if len(keys) != 0 {
		t.Fatalf("empty store has %d keys", len(keys))
	}

	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []tenancy.SigningKey
	for i, kid := range []string{"k-old", "k-mid", "k-new"} {
		k := tenancy.SigningKey{ID: kid, PrivateKey: []byte{byte(i), 0, 0xff},
			CreatedAt: base.Add(time.Duration(i) * time.Hour)}
		wantErr(t, st.CreateSigningKey(ctx, &k), nil, "create signing key")
		want = append([]tenancy.SigningKey{k}, want...) // newest first
	}
	fresh := tenancy.SigningKey{ID: "k-now", PrivateKey: []byte("seed")}
	wantErr(t, st.CreateSigningKey(ctx, &fresh), nil, "create signing key without a time")
	if fresh.CreatedAt.IsZero() {
		t.Error("CreateSigningKey left CreatedAt zero")
	}
	want = append([]tenancy.SigningKey{fresh}, want...)

	keys, err = st.SigningKeys(ctx)
	wantErr(t, err, nil, "signing keys")
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("signing keys = %+v, want %+v", keys, want)
	}
	wantErr(t, st.CreateSigningKey(ctx, &tenancy.SigningKey{ID: "k-old", PrivateKey: []byte("x")}),
		tenancy.ErrConflict, "create signing key with a taken id")
}
