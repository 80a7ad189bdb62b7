package api

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/tenancy"
)

type health struct {
	Status string `json:"status"`
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

// readyz answers 200 when the store answers within two seconds.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.problem(w, r, failCause(errUnavailable, "The store does not answer.", err))
		return
	}
	writeJSON(w, http.StatusOK, health{Status: "ok"})
}

func (s *server) openapiYAML(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(openapiYAML)
}

func (s *server) openapiJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(s.spec.json)
}

func (s *server) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.cfg.Keys.JWKS())
}

// projectUsage is the body of GET /projects/{projectId}/usage.
type projectUsage struct {
	ProjectID  string                       `json:"projectId"`
	Namespace  string                       `json:"namespace"`
	HasData    bool                         `json:"hasData"`
	ObservedAt *time.Time                   `json:"observedAt,omitempty"`
	Total      tenancy.Resources            `json:"total"`
	Apps       map[string]tenancy.Resources `json:"apps"`
}

func (s *server) projectUsage(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	out := projectUsage{ProjectID: project.ID, Namespace: project.Namespace,
		Total: resources(tenancy.Resources{}), Apps: map[string]tenancy.Resources{}}
	if s.cfg.Usage != nil {
		if u, ok := s.cfg.Usage.NamespaceUsage(project.Namespace); ok {
			out.HasData, out.ObservedAt, out.Total = true, &u.ObservedAt, resources(u.Total)
			out.Apps = appResources(u.Apps)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// resources returns r with an empty map, not null, for no pods. The
// collector's maps are copied, never written.
func resources(r tenancy.Resources) tenancy.Resources {
	if r.PodsByPhase == nil {
		r.PodsByPhase = map[string]int{}
	}
	return r
}

// appResources copies per-app figures with resources applied to each.
func appResources(apps map[string]tenancy.Resources) map[string]tenancy.Resources {
	out := make(map[string]tenancy.Resources, len(apps))
	for name, r := range apps {
		out[name] = resources(r)
	}
	return out
}

// clusterUsage is the body of GET /cluster/usage.
type clusterUsage struct {
	HasData    bool                     `json:"hasData"`
	ObservedAt *time.Time               `json:"observedAt,omitempty"`
	Namespaces []tenancy.NamespaceUsage `json:"namespaces"`
	Nodes      []tenancy.NodeUsage      `json:"nodes"`
}

// clusterUsage is for admins only: it is not a tenant resource, so others
// are told they are forbidden rather than that it does not exist.
func (s *server) clusterUsage(w http.ResponseWriter, r *http.Request) {
	if !principalFrom(r.Context()).Admin {
		s.problem(w, r, fail(tenancy.ErrForbidden, "Only platform admins see the cluster's usage."))
		return
	}
	out := clusterUsage{Namespaces: []tenancy.NamespaceUsage{}, Nodes: []tenancy.NodeUsage{}}
	if s.cfg.Usage != nil {
		u := s.cfg.Usage.ClusterUsage()
		if !u.ObservedAt.IsZero() {
			out.HasData, out.ObservedAt = true, &u.ObservedAt
		}
		for _, ns := range u.Namespaces {
			ns.Total, ns.Apps = resources(ns.Total), appResources(ns.Apps)
			out.Namespaces = append(out.Namespaces, ns)
		}
		for _, n := range u.Nodes {
			n.Total = resources(n.Total)
			if n.Endpoints == nil {
				n.Endpoints = map[string]bool{}
			}
			out.Nodes = append(out.Nodes, n)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// prometheus hands the request to the query proxy. The auth middleware has
// put the project's namespace in the context; the proxy sees the Prometheus
// API path and no client credentials.
func (s *server) prometheus(w http.ResponseWriter, r *http.Request) {
	if s.cfg.PromProxy == nil {
		const detail = "No Prometheus is configured (CANOPY_PROMETHEUS_URL)."
		s.problem(w, r, fail(errUnavailable, detail))
		return
	}
	prefix := projectPath(chi.URLParam(r, "projectId")) + "/prometheus"
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	r2.URL.RawPath = ""
	r2.Header.Del("Authorization")
	r2.Header.Del("Cookie")
	s.cfg.PromProxy.ServeHTTP(w, r2)
}
