package api

import (
	"net/http"
	"sync"
	"testing"

	"canopy.dev/canopy/tenancy"
)

// recorder is a tenancy.Notifier that remembers what it heard.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

var _ tenancy.Notifier = (*recorder)(nil)

func (r *recorder) ProjectChanged(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, id)
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

func testApps(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("apps") + "@example.com")
	id := h.createProject(u, uniq("apps"))
	base := "/api/v1/projects/" + id + "/apps"

	resp := h.do(req{method: "POST", path: base, token: u.access, body: map[string]any{
		"name": "web", "image": "ghcr.io/example/shop:1.4.2", "targetPort": 8080,
		"env": map[string]string{"LOG_LEVEL": "info"}}})
	var a appJSON
	resp.json(t, &a)
	if resp.status != 201 || resp.header.Get("Location") != a.Links.Self || a.Links.Self != base+"/"+a.ID {
		t.Fatalf("create app: %d Location=%q %+v", resp.status, resp.header.Get("Location"), a)
	}
	if a.Replicas != 1 || a.TargetPort != 8080 || a.Env["LOG_LEVEL"] != "info" || a.Links.Project == "" {
		t.Errorf("created app %+v: want 1 replica by default, port 8080, env, project link", a)
	}
	if got := h.do(req{method: "POST", path: base, token: u.access, body: map[string]any{
		"name": "web", "image": "nginx", "targetPort": 80}}).status; got != 409 {
		t.Errorf("second app named web: %d, want 409", got)
	}

	// PATCH as a merge patch, then as plain JSON; absent fields stay.
	resp = h.do(req{method: "PATCH", path: a.Links.Self, token: u.access, contentType: "application/merge-patch+json",
		body: map[string]any{"image": "ghcr.io/example/shop:1.4.3"}})
	var p appJSON
	resp.json(t, &p)
	if resp.status != 200 || p.Image != "ghcr.io/example/shop:1.4.3" || p.Replicas != 1 || p.Generation <= a.Generation {
		t.Errorf("merge patch image: %d %+v (was generation %d)", resp.status, p, a.Generation)
	}
	resp = h.do(req{method: "PATCH", path: a.Links.Self, token: u.access, body: map[string]any{"replicas": 3}})
	resp.json(t, &p)
	if resp.status != 200 || p.Replicas != 3 || p.Image != "ghcr.io/example/shop:1.4.3" {
		t.Errorf("json patch replicas: %d %+v", resp.status, p)
	}
	stored, err := st.AppByID(t.Context(), id, a.ID)
	if err != nil || stored.Replicas != 3 || stored.Image != "ghcr.io/example/shop:1.4.3" {
		t.Errorf("stored app %+v, %v", stored, err)
	}

	resp = h.do(req{method: "GET", path: base, token: u.access})
	var l list[appJSON]
	resp.json(t, &l)
	if resp.status != 200 || len(l.Items) != 1 || l.Items[0].ID != a.ID {
		t.Errorf("list apps: %d %+v", resp.status, l)
	}
	resp = h.do(req{method: "GET", path: "/api/v1/projects/" + id, token: u.access})
	var d projectDetails
	resp.json(t, &d)
	if len(d.Apps) != 1 || d.Apps[0].Name != "web" {
		t.Errorf("project details apps %+v, want web", d.Apps)
	}

	if got := h.do(req{method: "DELETE", path: a.Links.Self, token: u.access}).status; got != http.StatusAccepted {
		t.Fatalf("delete app: %d", got)
	}
	if got := h.do(req{method: "GET", path: a.Links.Self, token: u.access}).status; got != 404 {
		t.Errorf("GET deleted app: %d, want 404", got)
	}
	if got := h.do(req{method: "PATCH", path: a.Links.Self, token: u.access, body: map[string]any{"replicas": 2}}).status; got != 404 {
		t.Errorf("PATCH deleted app: %d, want 404", got)
	}
}

func testMembers(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	owner := h.signUp(uniq("m-owner") + "@example.com")
	viewer := h.signUp(uniq("m-viewer") + "@example.com")
	third := h.signUp(uniq("m-third") + "@example.com")
	id := h.createProject(owner, uniq("team"))
	base := "/api/v1/projects/" + id + "/members"

	resp := h.do(req{method: "POST", path: base, token: owner.access, body: map[string]string{"email": viewer.email, "role": "viewer"}})
	var m memberJSON
	resp.json(t, &m)
	if resp.status != 201 || m.UserID != viewer.id || resp.header.Get("Location") != base+"/"+viewer.id {
		t.Fatalf("add member: %d %+v Location=%q", resp.status, m, resp.header.Get("Location"))
	}
	resp = h.do(req{method: "POST", path: base, token: owner.access, body: map[string]string{"email": uniq("ghost") + "@example.com", "role": "viewer"}})
	if resp.status != 404 {
		t.Errorf("add unknown user: %d, want 404", resp.status)
	}
	resp.problem(t)

	// The viewer reads but does not change.
	if got := h.do(req{method: "GET", path: "/api/v1/projects/" + id, token: viewer.access}).status; got != 200 {
		t.Errorf("viewer reads project: %d", got)
	}
	for _, rq := range []req{
		{method: "POST", path: base, body: map[string]string{"email": third.email, "role": "owner"}},
		{method: "DELETE", path: base + "/" + owner.id},
		{method: "POST", path: "/api/v1/projects/" + id + "/apps", body: map[string]any{"name": "x", "image": "nginx", "targetPort": 80}},
		{method: "GET", path: "/api/v1/projects/" + id + "/tokens"},
	} {
		rq.token = viewer.access
		if got := h.do(rq).status; got != 403 {
			t.Errorf("viewer %s %s: %d, want 403", rq.method, rq.path, got)
		}
	}
	resp = h.do(req{method: "GET", path: base, token: viewer.access})
	var l list[memberJSON]
	resp.json(t, &l)
	roles := map[string]tenancy.Role{}
	for _, it := range l.Items {
		roles[it.UserID] = it.Role
	}
	if len(roles) != 2 || roles[owner.id] != tenancy.RoleOwner || roles[viewer.id] != tenancy.RoleViewer {
		t.Errorf("members %v: want owner and viewer", roles)
	}

	if got := h.do(req{method: "DELETE", path: base + "/" + owner.id, token: owner.access}).status; got != 409 {
		t.Errorf("remove the creator: %d, want 409", got)
	}
	if got := h.do(req{method: "DELETE", path: base + "/" + viewer.id, token: owner.access}).status; got != 204 {
		t.Errorf("remove viewer: %d, want 204", got)
	}
	if got := h.do(req{method: "GET", path: "/api/v1/projects/" + id, token: viewer.access}).status; got != 404 {
		t.Errorf("removed viewer reads project: %d, want 404", got)
	}
	if got := h.do(req{method: "DELETE", path: base + "/" + viewer.id, token: owner.access}).status; got != 404 {
		t.Errorf("remove again: %d, want 404", got)
	}
}
