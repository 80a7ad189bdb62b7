package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
)

// echoed is what namespaceEcho saw of a request.
type echoed struct {
	Status    string `json:"status"`
	Namespace string `json:"namespace"`
	Path      string `json:"path"`
	Query     string `json:"query"`
	Auth      string `json:"auth"`
	Body      string `json:"body"`
}

// namespaceEcho stands in for the query proxy: it answers, in the
// Prometheus envelope, the namespace it was given and the request it got.
func namespaceEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns, _ := tenancy.NamespaceFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Status: "success", Namespace: ns, Path: r.URL.Path,
			Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: string(body)})
	})
}

func testPrometheus(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st, func(c *Config) { c.PromProxy = namespaceEcho() })
	u := h.signUp(uniq("prom") + "@example.com")
	name := uniq("metrics")
	id := h.createProject(u, name)
	otherID := h.createProject(u, uniq("other"))
	base := "/api/v1/projects/" + id + "/prometheus/api/v1"

	resp := h.do(req{method: "POST", path: "/api/v1/projects/" + otherID + "/tokens", token: u.access,
		body: map[string]string{"name": "other"}})
	var otherToken tokenJSON
	resp.json(t, &otherToken)

	// A namespace a client tries to slip in is ignored: only the project's counts.
	resp = h.do(req{method: "GET", path: base + "/query?query=up&namespace=kube-system", token: u.access})
	var e echoed
	resp.json(t, &e)
	if resp.status != 200 || e.Namespace != "canopy-"+name || e.Path != "/api/v1/query" || e.Auth != "" {
		t.Errorf("query as member: %d %+v; want namespace canopy-%s, path /api/v1/query, no Authorization", resp.status, e, name)
	}
	resp = h.do(req{method: "POST", path: base + "/query_range", token: u.access,
		contentType: "application/x-www-form-urlencoded", body: "query=up&start=1&end=2&step=1"})
	resp.json(t, &e)
	if resp.status != 200 || e.Path != "/api/v1/query_range" || e.Body != "query=up&start=1&end=2&step=1" {
		t.Errorf("form POST: %d %+v", resp.status, e)
	}
	resp = h.do(req{method: "GET", path: base + "/label/pod/values", token: u.access})
	resp.json(t, &e)
	if resp.status != 200 || e.Path != "/api/v1/label/pod/values" {
		t.Errorf("label values: %d %+v", resp.status, e)
	}

	// Another project's token sees nothing of this one.
	if got := h.do(req{method: "GET", path: base + "/labels", token: otherToken.Token}).status; got != 404 {
		t.Errorf("other project's token: %d, want 404", got)
	}
	// The query parameter is required by the document.
	if got := h.do(req{method: "GET", path: base + "/query", token: u.access}).status; got != 400 {
		t.Errorf("query without query: %d, want 400", got)
	}

	// Without a proxy: 503.
	h2 := newHarness(t, st)
	resp = h2.do(req{method: "GET", path: base + "/query?query=up", token: u.access})
	if resp.status != 503 {
		t.Errorf("no proxy: %d, want 503", resp.status)
	}
	if p := resp.problem(t); !strings.Contains(p.Detail, "CANOPY_PROMETHEUS_URL") {
		t.Errorf("no proxy: detail %q does not say what is missing", p.Detail)
	}
}

// usageReader is a tenancy.UsageReader with fixed figures.
type usageReader struct{ ns tenancy.NamespaceUsage }

func (u usageReader) NamespaceUsage(ns string) (tenancy.NamespaceUsage, bool) {
	return u.ns, ns == u.ns.Namespace
}

func (u usageReader) ClusterUsage() tenancy.ClusterUsage {
	return tenancy.ClusterUsage{ObservedAt: u.ns.ObservedAt, Namespaces: []tenancy.NamespaceUsage{u.ns}}
}

func testUsage(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("usage") + "@example.com")
	name := uniq("usage")
	id := h.createProject(u, name)

	// No collector: an empty answer, not an error.
	resp := h.do(req{method: "GET", path: "/api/v1/projects/" + id + "/usage", token: u.access})
	var pu projectUsage
	resp.json(t, &pu)
	if resp.status != 200 || pu.HasData || pu.Namespace != "canopy-"+name {
		t.Errorf("usage without collector: %d %+v", resp.status, pu)
	}

	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	figures := tenancy.NamespaceUsage{Namespace: "canopy-" + name, ObservedAt: at,
		Total: tenancy.Resources{CPUCores: 0.25, MemoryWorkingSetBytes: 1 << 27},
		Apps:  map[string]tenancy.Resources{"web": {CPUCores: 0.25}}}
	h = newHarness(t, st, func(c *Config) { c.Usage = usageReader{figures} })
	resp = h.do(req{method: "GET", path: "/api/v1/projects/" + id + "/usage", token: u.access})
	resp.json(t, &pu)
	if !pu.HasData || pu.Total.CPUCores != 0.25 || pu.Apps["web"].CPUCores != 0.25 || !pu.ObservedAt.Equal(at) {
		t.Errorf("usage: %+v", pu)
	}
	if !strings.Contains(string(resp.body), `"memoryWorkingSetBytes":134217728`) {
		t.Errorf("usage body %s lacks camelCase memoryWorkingSetBytes", resp.body)
	}
}
