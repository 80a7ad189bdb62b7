package api

import (
	"fmt"
	"net/http"
	"testing"

	"canopy.dev/canopy/tenancy"
)

func testVisibility(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	alice := h.signUp(uniq("alice") + "@example.com")
	bob := h.signUp(uniq("bob") + "@example.com")
	id := h.createProject(alice, uniq("secret"))
	base := "/api/v1/projects/" + id

	// Bob cannot tell Alice's project from one that does not exist.
	for _, rq := range []req{
		{method: "GET", path: base},
		{method: "DELETE", path: base},
		{method: "GET", path: base + "/apps"},
		{method: "POST", path: base + "/apps", body: map[string]any{"name": "web", "image": "nginx", "targetPort": 80}},
		{method: "GET", path: base + "/members"},
		{method: "POST", path: base + "/members", body: map[string]string{"email": bob.email, "role": "owner"}},
		{method: "GET", path: base + "/tokens"},
		{method: "POST", path: base + "/tokens", body: map[string]string{"name": "steal"}},
		{method: "GET", path: base + "/usage"},
		{method: "GET", path: base + "/prometheus/api/v1/query?query=up"},
	} {
		rq.token = bob.access
		resp := h.do(rq)
		if resp.status != http.StatusNotFound {
			t.Errorf("bob %s %s: %d, want 404", rq.method, rq.path, resp.status)
			continue
		}
		missing := h.do(req{method: rq.method, path: "/api/v1/projects/0000000000000000" + rq.path[len(base):],
			token: bob.access, body: rq.body})
		if p, q := resp.problem(t), missing.problem(t); p.Detail != q.Detail || missing.status != 404 {
			t.Errorf("bob %s %s: %q, a missing project: %d %q; want the same answer",
				rq.method, rq.path, p.Detail, missing.status, q.Detail)
		}
	}
	if got := listIDs(t, h, bob); len(got) != 0 {
		t.Errorf("bob lists %v, want nothing", got)
	}
	if m, err := st.Member(t.Context(), id, bob.id); err == nil {
		t.Errorf("bob became a member: %+v", m)
	}

	// An admin sees every project, and the cluster usage; others may not.
	admin := h.signUp("admin-" + uniq("x") + "@example.com")
	if got := h.do(req{method: "GET", path: "/api/v1/cluster/usage", token: alice.access}).status; got != 403 {
		t.Errorf("cluster usage for alice: %d, want 403", got)
	}
	h2 := newHarness(t, st, func(c *Config) { c.AdminEmails = []string{admin.email} })
	admin.access = h2.login(admin.email, "correct horse battery", "").AccessToken
	if got := h2.do(req{method: "GET", path: base, token: admin.access}).status; got != 200 {
		t.Errorf("admin GET alice's project: %d, want 200", got)
	}
	if got := h2.do(req{method: "DELETE", path: base, token: admin.access}).status; got != 403 {
		t.Errorf("admin DELETE alice's project: %d, want 403 (admins read, owners change)", got)
	}
	if got := h2.do(req{method: "GET", path: "/api/v1/cluster/usage", token: admin.access}).status; got != 200 {
		t.Errorf("admin cluster usage: %d, want 200", got)
	}
	found := false
	for _, pid := range listIDs(t, h2, admin) {
		found = found || pid == id
	}
	if !found {
		t.Errorf("admin's list lacks alice's project %s", id)
	}
}

// listIDs walks every page of the user's projects.
func listIDs(t *testing.T, h *harness, u user) []string {
	t.Helper()
	var ids []string
	path := "/api/v1/projects?limit=100"
	for path != "" {
		resp := h.do(req{method: "GET", path: path, token: u.access})
		var page list[projectJSON]
		resp.json(t, &page)
		for _, p := range page.Items {
			ids = append(ids, p.ID)
		}
		path = page.Links.Next
	}
	return ids
}

func testPagination(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("pages") + "@example.com")
	want := map[string]bool{}
	for i := range 25 {
		want[h.createProject(u, uniq(fmt.Sprintf("p%d", i)))] = true
	}

	seen := map[string]bool{}
	var sizes []int
	path := "/api/v1/projects?limit=10"
	for path != "" {
		resp := h.do(req{method: "GET", path: path, token: u.access})
		var page list[projectJSON]
		resp.json(t, &page)
		if resp.status != 200 {
			t.Fatalf("GET %s: %d", path, resp.status)
		}
		sizes = append(sizes, len(page.Items))
		for _, p := range page.Items {
			if seen[p.ID] {
				t.Errorf("project %s on two pages", p.ID)
			}
			seen[p.ID] = true
		}
		if (page.NextCursor == "") != (page.Links.Next == "") {
			t.Errorf("nextCursor %q and links.next %q disagree", page.NextCursor, page.Links.Next)
		}
		path = page.Links.Next
	}
	if fmt.Sprint(sizes) != "[10 10 5]" || len(seen) != len(want) {
		t.Errorf("page sizes %v, %d projects; want [10 10 5] and %d", sizes, len(seen), len(want))
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("project %s never listed", id)
		}
	}

	for _, path := range []string{"/api/v1/projects?cursor=not-a-cursor!", "/api/v1/projects?limit=0",
		"/api/v1/projects?limit=101", "/api/v1/projects?limit=ten"} {
		resp := h.do(req{method: "GET", path: path, token: u.access})
		if resp.status != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", path, resp.status)
			continue
		}
		if p := resp.problem(t); len(p.Errors) == 0 {
			t.Errorf("GET %s: problem without errors[]", path)
		}
	}
}

func testProjectsNoCluster(t *testing.T, st tenancy.Store) {
	notified := &recorder{}
	h := newHarness(t, st, func(c *Config) { c.Notifier = notified; c.NamespacePrefix = "team-" })
	u := h.signUp(uniq("nocluster") + "@example.com")
	name := uniq("shop")

	resp := h.do(req{method: "POST", path: "/api/v1/projects", token: u.access,
		body: map[string]string{"name": name, "description": "The shop"}})
	var p projectDetails
	resp.json(t, &p)
	if resp.status != 201 || resp.header.Get("Location") != "/api/v1/projects/"+p.ID {
		t.Fatalf("create: %d Location=%q", resp.status, resp.header.Get("Location"))
	}
	if p.Namespace != "team-"+name || p.Status != tenancy.StatusProvisioning || p.Links.Apps != p.Links.Self+"/apps" {
		t.Errorf("created %+v: want namespace team-%s, provisioning, links", p, name)
	}
	if got := notified.ids(); len(got) != 1 || got[0] != p.ID {
		t.Errorf("notifier heard %v, want [%s]", got, p.ID)
	}

	resp = h.do(req{method: "GET", path: p.Links.Self, token: u.access})
	var d projectDetails
	resp.json(t, &d)
	cond := findCondition(d.Conditions, ConditionClusterReady)
	if cond == nil || cond.Status != "False" || cond.Reason != "NoClusterConfigured" {
		t.Errorf("conditions %+v: want ClusterReady False NoClusterConfigured", d.Conditions)
	}
	if d.Status != tenancy.StatusProvisioning || d.Role != tenancy.RoleOwner || d.Apps == nil {
		t.Errorf("details %+v: want provisioning, role owner, apps []", d)
	}

	// Nothing would ever remove it, so deleting removes the row.
	if got := h.do(req{method: "DELETE", path: p.Links.Self, token: u.access}).status; got != 202 {
		t.Fatalf("delete: %d, want 202", got)
	}
	if _, err := st.ProjectByID(t.Context(), p.ID); err == nil {
		t.Errorf("project still stored after delete without a cluster")
	}
	if got := h.do(req{method: "GET", path: p.Links.Self, token: u.access}).status; got != 404 {
		t.Errorf("GET after delete: %d, want 404", got)
	}
}

func testProjectDeleteWithCluster(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st, func(c *Config) { c.ClusterConfigured = true })
	u := h.signUp(uniq("cluster") + "@example.com")
	viewer := h.signUp(uniq("viewer") + "@example.com")
	id := h.createProject(u, uniq("doomed"))
	base := "/api/v1/projects/" + id
	h.do(req{method: "POST", path: base + "/members", token: u.access, body: map[string]string{"email": viewer.email, "role": "viewer"}})

	if got := h.do(req{method: "DELETE", path: base, token: viewer.access}).status; got != 403 {
		t.Errorf("viewer deletes: %d, want 403", got)
	}
	resp := h.do(req{method: "DELETE", path: base, token: u.access})
	var p projectJSON
	resp.json(t, &p)
	if resp.status != 202 || p.Status != tenancy.StatusDeleting {
		t.Fatalf("delete: %d %+v, want 202 deleting", resp.status, p)
	}
	stored, err := st.ProjectByID(t.Context(), id)
	if err != nil || stored.Status != tenancy.StatusDeleting {
		t.Errorf("stored %+v, %v: want deleting, kept for the reconciler", stored, err)
	}
	if c := findCondition(p.Conditions, ConditionClusterReady); c != nil && c.Reason == "NoClusterConfigured" {
		t.Errorf("no-cluster condition shown with a cluster: %+v", c)
	}
	// A project being deleted takes no new apps.
	resp = h.do(req{method: "POST", path: base + "/apps", token: u.access,
		body: map[string]any{"name": "late", "image": "nginx", "targetPort": 80}})
	if resp.status != 409 {
		t.Errorf("app in a deleting project: %d, want 409", resp.status)
	}
}

func findCondition(cs []tenancy.Condition, typ string) *tenancy.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}
