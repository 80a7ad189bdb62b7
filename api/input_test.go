package api

import (
	"bytes"
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"canopy.dev/canopy/tenancy"
)

// snapshot is what a user has in the store; bad input must not change it.
type snapshot struct {
	projects []string
	apps     int
}

func takeSnapshot(t *testing.T, st tenancy.Store, userID string) snapshot {
	t.Helper()
	ctx := context.Background()
	ps, _, err := st.ListProjects(ctx, tenancy.ProjectFilter{MemberID: userID, Page: tenancy.Page{Limit: 100}})
	if err != nil {
		t.Fatalf("list projects: %v", err)
	}
	var snap snapshot
	for _, p := range ps {
		snap.projects = append(snap.projects, p.Name)
		apps, _, err := st.ListApps(ctx, p.ID, tenancy.Page{Limit: 100})
		if err != nil {
			t.Fatalf("list apps: %v", err)
		}
		snap.apps += len(apps)
	}
	sort.Strings(snap.projects)
	return snap
}

func fieldNames(p Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

func testValidation(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("valid") + "@example.com")
	id := h.createProject(u, uniq("valid"))
	apps := "/api/v1/projects/" + id + "/apps"
	before := takeSnapshot(t, st, u.id)

	long := strings.Repeat("a", 63-len(DefaultNamespacePrefix)+1) // fits a label, not a namespace
	cases := []struct {
		name   string
		path   string
		method string
		body   any
		fields []string
	}{
		{"upper-case name", "/api/v1/projects", "POST", map[string]any{"name": "Shop"}, []string{"name"}},
		{"dot in name", "/api/v1/projects", "POST", map[string]any{"name": "a.b"}, []string{"name"}},
		{"leading dash", "/api/v1/projects", "POST", map[string]any{"name": "-shop"}, []string{"name"}},
		{"namespace too long", "/api/v1/projects", "POST", map[string]any{"name": long}, []string{"name"}},
		{"missing name", "/api/v1/projects", "POST", map[string]any{"description": "x"}, []string{"name"}},
		{"every app field", apps, "POST", map[string]any{"name": "Web!", "image": "nginx",
			"targetPort": 0, "replicas": 51}, []string{"name", "replicas", "targetPort"}},
		{"app name starts with a digit", apps, "POST", map[string]any{"name": "1web",
			"image": "nginx", "targetPort": 80}, []string{"name"}},
		{"upper-case image", apps, "POST", map[string]any{"name": "web", "image": "UPPER/Case:tag",
			"targetPort": 80}, []string{"image"}},
		{"port too high", apps, "POST", map[string]any{"name": "web", "image": "nginx", "targetPort": 65536},
			[]string{"targetPort"}},
		{"negative replicas", apps, "POST", map[string]any{"name": "web", "image": "nginx", "targetPort": 80,
			"replicas": -1}, []string{"replicas"}},
		{"bad env names", apps, "POST", map[string]any{"name": "web", "image": "nginx", "targetPort": 80,
			"env": map[string]string{"1BAD": "x", "MY-VAR": "y", "GOOD_1": "z"}}, []string{"env.1BAD", "env.MY-VAR"}},
		{"image with spaces", apps, "POST", map[string]any{"name": "web", "image": "nginx latest",
			"targetPort": 80}, []string{"image"}},
		{"image with bad digest", apps, "POST", map[string]any{"name": "web", "image": "nginx@sha256:abc",
			"targetPort": 80}, []string{"image"}},
		{"port as string", apps, "POST", map[string]any{"name": "web", "image": "nginx", "targetPort": "80"},
			[]string{"targetPort"}},
		{"member role", "/api/v1/projects/" + id + "/members", "POST", map[string]any{"email": u.email,
			"role": "admin"}, []string{"role"}},
		{"short password", "/api/v1/auth/register", "POST", map[string]any{"email": "x@example.com",
			"password": "short", "name": "X"}, []string{"password"}},
		{"bad email", "/api/v1/auth/register", "POST", map[string]any{"email": "not an email",
			"password": "long enough password", "name": "X"}, []string{"email"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do(req{method: tc.method, path: tc.path, token: u.access, body: tc.body})
			if resp.status != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s, want 422", resp.status, resp.body)
			}
			p := resp.problem(t)
			if got := strings.Join(fieldNames(p), ","); got != strings.Join(tc.fields, ",") {
				t.Errorf("fields %s, want %s (%+v)", got, strings.Join(tc.fields, ","), p.Errors)
			}
		})
	}

	// Valid edge values pass: 63-character namespace, port bounds, 0 and 50 replicas, digest image.
	fits := strings.Repeat("b", 63-len(DefaultNamespacePrefix)-8) + uniq("")[1:]
	for _, body := range []map[string]any{
		{"name": "edge-a", "image": "nginx", "targetPort": 1, "replicas": 0},
		{"name": "edge-b", "image": "registry.example.com:5000/team/app@sha256:" + strings.Repeat("a", 64),
			"targetPort": 65535, "replicas": 50},
	} {
		if resp := h.do(req{method: "POST", path: apps, token: u.access, body: body}); resp.status != 201 {
			t.Errorf("valid app %v: %d %s", body, resp.status, resp.body)
		}
	}
	if resp := h.do(req{method: "POST", path: "/api/v1/projects", token: u.access,
		body: map[string]any{"name": fits}}); resp.status != 201 {
		t.Errorf("project of %d characters (namespace of 63): %d %s", len(fits), resp.status, resp.body)
	}
	after := takeSnapshot(t, st, u.id)
	if after.apps != before.apps+2 || len(after.projects) != len(before.projects)+1 {
		t.Errorf("store went from %+v to %+v: only the valid inputs may land", before, after)
	}
}

func testBadInput(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("bad") + "@example.com")
	id := h.createProject(u, uniq("bad"))
	before := takeSnapshot(t, st, u.id)
	huge := append([]byte(`{"name":"big","description":"`), bytes.Repeat([]byte("x"), MaxBodyBytes)...)
	huge = append(huge, `"}`...)

	cases := []struct {
		name        string
		method      string
		path        string
		body        any
		contentType string
		status      int
	}{
		{"malformed JSON", "POST", "/api/v1/projects", `{"name": "x",`, "", 400},
		{"not JSON", "POST", "/api/v1/projects", `name=x`, "", 400},
		{"two objects", "POST", "/api/v1/projects", `{"name":"a1"}{"name":"a2"}`, "", 400},
		{"empty body", "POST", "/api/v1/projects", ``, "", 400},
		{"unknown field", "POST", "/api/v1/projects", `{"name":"ok-name","owner":"someone"}`, "", 422},
		{"wrong type", "POST", "/api/v1/projects", `{"name":["x"]}`, "", 422},
		{"array body", "POST", "/api/v1/projects", `[]`, "", 422},
		{"over 1 MiB", "POST", "/api/v1/projects", huge, "", 413},
		{"form content type", "POST", "/api/v1/projects", `{"name":"formy"}`, "application/x-www-form-urlencoded", 415},
		{"text content type", "POST", "/api/v1/projects", `{"name":"texty"}`, "text/plain", 415},
		{"merge patch on create", "POST", "/api/v1/projects", `{"name":"mergy"}`, "application/merge-patch+json", 415},
		{"SQL in name", "POST", "/api/v1/projects", `{"name":"x'; DROP TABLE projects; --"}`, "", 422},
		{"SQL quote in app", "POST", "/api/v1/projects/" + id + "/apps",
			`{"name":"a\" OR 1=1 --","image":"nginx","targetPort":80}`, "", 422},
		{"SQL in path", "GET", "/api/v1/projects/1%27%20OR%20%271%27=%271", nil, "", 404},
		{"token in query", "POST", "/api/v1/auth/refresh?refreshToken=abc", `{"refreshToken":"abc"}`, "", 400},
		{"access token in query", "GET", "/api/v1/projects?access_token=" + u.access, nil, "", 400},
		{"unknown route", "GET", "/api/v1/nothing", nil, "", 404},
		{"wrong method", "PUT", "/api/v1/projects", `{}`, "", 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do(req{method: tc.method, path: tc.path, token: u.access, body: tc.body, contentType: tc.contentType})
			if resp.status != tc.status {
				t.Fatalf("%d %s, want %d", resp.status, resp.body, tc.status)
			}
			if p := resp.problem(t); p.Detail == "" || p.Instance == "" {
				t.Errorf("problem %+v lacks detail or instance", p)
			}
			if tc.status == http.StatusMethodNotAllowed && resp.header.Get("Allow") != "GET, POST" {
				t.Errorf("405 Allow = %q, want \"GET, POST\"", resp.header.Get("Allow"))
			}
		})
	}
	if after := takeSnapshot(t, st, u.id); strings.Join(after.projects, ",") != strings.Join(before.projects, ",") || after.apps != before.apps {
		t.Errorf("bad input changed the store: %+v → %+v", before, after)
	}
}
