package grafanasync_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"canopy.dev/canopy/dashboards"
	"canopy.dev/canopy/dashboards/grafanasync"
	"canopy.dev/canopy/dashboards/grafanatest"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/sqlstore"
)

const (
	adminUser     = "canopy-sync"
	adminPassword = "s3cret"
	externalURL   = "https://canopy.example.test"
)

// env is a stand-in Grafana, a real SQLite store and a Syncer between them.
type env struct {
	t       *testing.T
	ctx     context.Context
	grafana *grafanatest.Server
	store   *sqlstore.Store
	sync    *grafanasync.Syncer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "canopy.db"), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	g := grafanatest.New(t, adminUser, adminPassword)
	s, err := grafanasync.New(grafanasync.Config{URL: g.URL, User: adminUser,
		Password: adminPassword, ExternalURL: externalURL, Store: st,
		RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{t: t, ctx: ctx, grafana: g, store: st, sync: s}
}

// user stores a user and returns it.
func (e *env) user(email, name string) *tenancy.User {
	e.t.Helper()
	u := &tenancy.User{Email: email, Name: name, PasswordHash: "x"}
	if err := e.store.CreateUser(e.ctx, u); err != nil {
		e.t.Fatalf("create user: %v", err)
	}
	return u
}

// project stores a project owned by owner.
func (e *env) project(name string, owner *tenancy.User) *tenancy.Project {
	e.t.Helper()
	p := &tenancy.Project{Name: name, Namespace: "canopy-" + name, OwnerID: owner.ID,
		Status: tenancy.StatusReady}
	if err := e.store.CreateProject(e.ctx, p); err != nil {
		e.t.Fatalf("create project: %v", err)
	}
	return p
}

// syncOK runs one pass and fails the test on error.
func (e *env) syncOK() {
	e.t.Helper()
	if err := e.sync.SyncOnce(e.ctx); err != nil {
		e.t.Fatalf("SyncOnce: %v", err)
	}
}

// org returns the project's organization, failing if there is none.
func (e *env) org(name string) grafanatest.Org {
	e.t.Helper()
	o, ok := e.grafana.OrgByName(name)
	if !ok {
		e.t.Fatalf("no grafana organization %q", name)
	}
	return o
}

// condition returns the project's condition of that type.
func (e *env) condition(id, typ string) tenancy.Condition {
	e.t.Helper()
	p, err := e.store.ProjectByID(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get project: %v", err)
	}
	for _, c := range p.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return tenancy.Condition{}
}

// noWrites runs a pass and checks that it wrote nothing to Grafana.
func (e *env) noWrites() {
	e.t.Helper()
	before := e.grafana.Writes()
	e.syncOK()
	if n := e.grafana.Writes() - before; n != 0 {
		e.t.Errorf("a pass over an unchanged state made %d write calls, want 0", n)
	}
}

func TestFirstSync(t *testing.T) {
	e := newEnv(t)
	owner := e.user("Owner@Example.com", "Olive Owner")
	viewer := e.user("viewer@example.com", "Vic Viewer")
	p := e.project("shop", owner)
	if err := e.store.AddMember(e.ctx, &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID,
		Role: tenancy.RoleViewer}); err != nil {
		t.Fatal(err)
	}

	e.syncOK()

	// Admin dashboards in the main organization.
	main := e.grafana.Orgs()[0]
	for _, uid := range []string{"canopy-cluster", "canopy-nodes"} {
		if main.Dashboards[uid] == 0 {
			t.Errorf("main organization lacks dashboard %s", uid)
		}
	}

	// The project's organization: data source, dashboards, members.
	o := e.org("shop")
	ds, ok := o.DataSources["canopy-prometheus"]
	if !ok {
		t.Fatalf("organization shop has no data source; has %v", o.DataSources)
	}
	wantURL := externalURL + "/api/v1/projects/" + p.ID + "/prometheus"
	if ds.URL != wantURL || ds.Type != "prometheus" || !ds.IsDefault {
		t.Errorf("data source = %+v, want prometheus at %s, default", ds, wantURL)
	}
	if ds.JSONData["httpHeaderName1"] != "Authorization" {
		t.Errorf("jsonData.httpHeaderName1 = %v, want Authorization", ds.JSONData["httpHeaderName1"])
	}
	checkToken(t, e, p.ID, ds.SecureJSONData["httpHeaderValue1"])

	for _, k := range dashboards.ProjectKinds {
		if o.Dashboards[dashboards.UID(k, "shop")] == 0 {
			t.Errorf("organization shop lacks dashboard %s", dashboards.UID(k, "shop"))
		}
	}
	wantMembers := map[string]string{adminUser: "Admin",
		"owner@example.com": "Viewer", "viewer@example.com": "Viewer"}
	if !sameMap(o.Members, wantMembers) {
		t.Errorf("members = %v, want %v", o.Members, wantMembers)
	}
	if main.Members["owner@example.com"] != "" {
		t.Errorf("a project member landed in the main organization: %v", main.Members)
	}

	if c := e.condition(p.ID, grafanasync.ConditionReady); c.Status != "True" {
		t.Errorf("GrafanaReady = %+v, want True", c)
	}

	e.noWrites()
}

// checkToken checks that the header value is a Bearer token whose SHA-256
// the store knows for the project.
func checkToken(t *testing.T, e *env, projectID, header string) {
	t.Helper()
	secret, ok := strings.CutPrefix(header, "Bearer "+grafanasync.TokenPrefix)
	if !ok || len(secret) < 40 {
		t.Fatalf("secure header value %q is not Bearer cnp_...", header)
	}
	sum := sha256.Sum256([]byte(grafanasync.TokenPrefix + secret))
	tok, err := e.store.ProjectTokenByHash(e.ctx, sum[:])
	if err != nil || tok.ProjectID != projectID {
		t.Fatalf("token of the data source is not the project's: %v %+v", err, tok)
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestDriftRepair(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	p := e.project("shop", owner)
	e.syncOK()
	o := e.org("shop")
	firstSecret := o.DataSources["canopy-prometheus"].SecureJSONData["httpHeaderValue1"]

	uid := dashboards.UID(dashboards.KindPods, "shop")
	if !e.grafana.DeleteDashboard(o.ID, uid) ||
		!e.grafana.DeleteDataSource(o.ID, "canopy-prometheus") ||
		!e.grafana.RemoveMember(o.ID, "owner@example.com") ||
		!e.grafana.EditDashboardTitle(o.ID, dashboards.UID(dashboards.KindApps, "shop"), "mine") ||
		!e.grafana.DeleteDashboard(grafanatest.MainOrgID, "canopy-nodes") {
		t.Fatal("could not change Grafana by hand")
	}

	e.syncOK()

	o = e.org("shop")
	if o.Dashboards[uid] == 0 || e.grafana.Orgs()[0].Dashboards["canopy-nodes"] == 0 {
		t.Error("dashboards deleted by hand did not come back")
	}
	ds, ok := o.DataSources["canopy-prometheus"]
	if !ok {
		t.Fatal("data source deleted by hand did not come back")
	}
	newSecret := ds.SecureJSONData["httpHeaderValue1"]
	if newSecret == firstSecret {
		t.Error("the recreated data source reuses a token Canopy no longer holds")
	}
	checkToken(t, e, p.ID, newSecret)
	tokens, err := e.store.ListProjectTokens(e.ctx, p.ID)
	if err != nil || len(tokens) != 1 {
		t.Errorf("project tokens after repair = %d (%v), want only the new one", len(tokens), err)
	}
	if o.Members["owner@example.com"] != "Viewer" {
		t.Errorf("member removed by hand did not come back: %v", o.Members)
	}
	// The hand edit bumped the version; the repair wrote over it.
	if v := o.Dashboards[dashboards.UID(dashboards.KindApps, "shop")]; v < 3 {
		t.Errorf("edited dashboard version = %d, want a repair after the edit", v)
	}

	e.noWrites()
}

func TestMembersAddedAndRemoved(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	bob := e.user("bob@example.com", "Bob")
	p := e.project("shop", owner)
	other := e.project("blog", bob)
	e.syncOK()

	// Bob already has a Grafana user (from project blog): matched by email.
	if err := e.store.AddMember(e.ctx, &tenancy.Member{ProjectID: p.ID, UserID: bob.ID,
		Role: tenancy.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	e.syncOK()
	if got := e.org("shop").Members["bob@example.com"]; got != "Viewer" {
		t.Errorf("added member role = %q, want Viewer", got)
	}

	if err := e.store.RemoveMember(e.ctx, p.ID, bob.ID); err != nil {
		t.Fatal(err)
	}
	e.syncOK()
	if got, ok := e.org("shop").Members["bob@example.com"]; ok {
		t.Errorf("removed member still in the organization with role %q", got)
	}
	if e.org("blog").Members["bob@example.com"] != "Viewer" {
		t.Error("removing bob from shop touched blog")
	}
	_ = other
	e.noWrites()
}

func TestProjectDeletion(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	p := e.project("shop", owner)
	gone := e.project("blog", owner)
	e.syncOK()

	// Deleting: the organization goes and the project says so.
	if err := e.store.MarkProjectDeleting(e.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	e.syncOK()
	if _, ok := e.grafana.OrgByName("shop"); ok {
		t.Error("organization of a deleting project still exists")
	}
	c := e.condition(p.ID, grafanasync.ConditionReady)
	if c.Reason != grafanasync.ReasonOrganizationDeleted {
		t.Errorf("GrafanaReady = %+v, want reason OrganizationDeleted", c)
	}

	// Gone from the store without a deleting pass: swept, also by a fresh
	// Syncer that never saw the project (as after a restart).
	if err := e.store.DeleteProject(e.ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	fresh, err := grafanasync.New(grafanasync.Config{URL: e.grafana.URL, User: adminUser,
		Password: adminPassword, ExternalURL: externalURL, Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	if err := fresh.SyncOnce(e.ctx); err != nil {
		t.Fatalf("SyncOnce: %v", err)
	}
	if _, ok := e.grafana.OrgByName("blog"); ok {
		t.Error("organization of a project gone from the store still exists")
	}
	if n := len(e.grafana.Orgs()); n != 1 {
		t.Errorf("%d organizations left, want only the main one", n)
	}
}

func TestGrafanaDownThenUp(t *testing.T) {
	for _, mode := range []grafanatest.Mode{grafanatest.Unavailable, grafanatest.Refusing} {
		e := newEnv(t)
		owner := e.user("owner@example.com", "Owner")
		p := e.project("shop", owner)

		e.grafana.SetMode(mode)
		err := e.sync.SyncOnce(e.ctx)
		if err == nil {
			t.Fatalf("mode %d: SyncOnce succeeded against a Grafana that is down", mode)
		}
		c := e.condition(p.ID, grafanasync.ConditionReady)
		if c.Status != "False" || c.Reason != grafanasync.ReasonUnavailable {
			t.Errorf("mode %d: GrafanaReady = %+v, want False GrafanaUnavailable", mode, c)
		}
		tokens, _ := e.store.ListProjectTokens(e.ctx, p.ID)
		if len(tokens) != 0 {
			t.Errorf("mode %d: a failed pass left %d project tokens", mode, len(tokens))
		}

		e.grafana.SetMode(grafanatest.Up)
		e.syncOK()
		if c := e.condition(p.ID, grafanasync.ConditionReady); c.Status != "True" {
			t.Errorf("mode %d: GrafanaReady after recovery = %+v, want True", mode, c)
		}
		if o := e.org("shop"); len(o.Dashboards) != 3 || len(o.DataSources) != 1 {
			t.Errorf("mode %d: after recovery org holds %v", mode, o)
		}
		e.noWrites()
	}
}

func TestOrganizationNameConflict(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	foreign := e.grafana.CreateOrg("shop")
	p := e.project("shop", owner)

	e.syncOK() // a conflict is reported, not retried as a failure

	c := e.condition(p.ID, grafanasync.ConditionReady)
	if c.Status != "False" || c.Reason != grafanasync.ReasonOrganizationTaken {
		t.Errorf("GrafanaReady = %+v, want False OrganizationNameTaken", c)
	}
	o := e.org("shop")
	if o.ID != foreign || len(o.DataSources) != 0 || len(o.Dashboards) != 0 ||
		len(o.Members) != 1 {
		t.Errorf("the foreign organization was adopted: %+v", o)
	}
	if rec := e.condition(p.ID, grafanasync.ConditionOrganization); rec.Type != "" {
		t.Errorf("the foreign organization was recorded as Canopy's: %+v", rec)
	}
	e.noWrites()

	// Deleting the project leaves the foreign organization alone.
	if err := e.store.MarkProjectDeleting(e.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	e.syncOK()
	if _, ok := e.grafana.OrgByName("shop"); !ok {
		t.Error("deleting the project deleted an organization Canopy did not create")
	}
}

func TestWrongCredentials(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	p := e.project("shop", owner)
	bad, err := grafanasync.New(grafanasync.Config{URL: e.grafana.URL, User: adminUser,
		Password: "wrong", ExternalURL: externalURL, Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.SyncOnce(e.ctx); err == nil {
		t.Fatal("SyncOnce with a wrong password succeeded")
	}
	if c := e.condition(p.ID, grafanasync.ConditionReady); c.Reason != grafanasync.ReasonUnauthorized {
		t.Errorf("GrafanaReady = %+v, want reason GrafanaUnauthorized", c)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	e := newEnv(t)
	good := grafanasync.Config{URL: "http://127.0.0.1:3000", User: "u", Password: "p",
		ExternalURL: externalURL, Store: e.store}
	bad := []func(c *grafanasync.Config){
		func(c *grafanasync.Config) { c.URL = "" },
		func(c *grafanasync.Config) { c.URL = "ftp://x" },
		func(c *grafanasync.Config) { c.ExternalURL = "not a url" },
		func(c *grafanasync.Config) { c.Password = "" },
		func(c *grafanasync.Config) { c.Store = nil },
	}
	for i, change := range bad {
		c := good
		change(&c)
		if _, err := grafanasync.New(c); !errors.Is(err, grafanasync.ErrConfig) {
			t.Errorf("case %d: New error = %v, want ErrConfig", i, err)
		}
	}
}

func TestRunConvergesAfterOutage(t *testing.T) {
	e := newEnv(t)
	owner := e.user("owner@example.com", "Owner")
	p := e.project("shop", owner)
	s, err := grafanasync.New(grafanasync.Config{URL: e.grafana.URL, User: adminUser,
		Password: adminPassword, ExternalURL: externalURL, Store: e.store,
		ResyncInterval: time.Hour, MinBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.grafana.SetMode(grafanatest.Unavailable)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor(t, func() bool {
		return e.condition(p.ID, grafanasync.ConditionReady).Reason == grafanasync.ReasonUnavailable
	})
	e.grafana.SetMode(grafanatest.Up)
	// The resync interval is an hour: only the backoff retries.
	waitFor(t, func() bool {
		return e.condition(p.ID, grafanasync.ConditionReady).Status == "True"
	})

	// A change is picked up at once through ProjectChanged.
	viewer := e.user("viewer@example.com", "Viewer")
	if err := e.store.AddMember(e.ctx, &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID,
		Role: tenancy.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	s.ProjectChanged(p.ID)
	waitFor(t, func() bool { return e.org("shop").Members["viewer@example.com"] == "Viewer" })
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkSyncOnceUnchanged measures a pass that finds nothing to change,
// over 20 projects of two members each: the steady state of every resync.
func BenchmarkSyncOnceUnchanged(b *testing.B) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(b.TempDir(), "canopy.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	g := grafanatest.New(b, adminUser, adminPassword)
	s, err := grafanasync.New(grafanasync.Config{URL: g.URL, User: adminUser,
		Password: adminPassword, ExternalURL: externalURL, Store: st})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 20 {
		owner := &tenancy.User{Email: fmt.Sprintf("o%d@example.com", i), Name: "O", PasswordHash: "x"}
		viewer := &tenancy.User{Email: fmt.Sprintf("v%d@example.com", i), Name: "V", PasswordHash: "x"}
		if err := errors.Join(st.CreateUser(ctx, owner), st.CreateUser(ctx, viewer)); err != nil {
			b.Fatal(err)
		}
		p := &tenancy.Project{Name: fmt.Sprintf("p%d", i), Namespace: fmt.Sprintf("canopy-p%d", i),
			OwnerID: owner.ID, Status: tenancy.StatusReady}
		if err := st.CreateProject(ctx, p); err != nil {
			b.Fatal(err)
		}
		if err := st.AddMember(ctx, &tenancy.Member{ProjectID: p.ID, UserID: viewer.ID,
			Role: tenancy.RoleViewer}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.SyncOnce(ctx); err != nil {
		b.Fatal(err)
	}
	writes := g.Writes()

	b.ResetTimer()
	for b.Loop() {
		if err := s.SyncOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if g.Writes() != writes {
		b.Fatalf("unchanged passes wrote %d times", g.Writes()-writes)
	}
}
