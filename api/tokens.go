package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
)

// tokenCreate is the body of POST /projects/{projectId}/tokens.
type tokenCreate struct {
	Name string `json:"name"`
}

// Project tokens are read credentials for the project's metrics, so only
// owners list, make and revoke them.

func (s *server) listProjectTokens(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleOwner)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	tokens, err := s.store.ListProjectTokens(r.Context(), project.ID)
	if err != nil {
		s.problem(w, r, fmt.Errorf("list project tokens: %w", err))
		return
	}
	out := list[tokenJSON]{Items: make([]tokenJSON, 0, len(tokens)),
		Links: links{Self: projectPath(project.ID) + "/tokens", Project: projectPath(project.ID)}}
	for _, t := range tokens {
		out.Items = append(out.Items, toTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createProjectToken(w http.ResponseWriter, r *http.Request) {
	var req tokenCreate
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 {
		s.problem(w, r, invalid(field("name", "must be 1 to 100 characters")))
		return
	}
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}

	secret, hash, err := auth.NewOpaqueToken(auth.ProjectTokenPrefix)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	t := &tenancy.ProjectToken{ProjectID: project.ID, Name: name, Hash: hash}
	if err := s.store.CreateProjectToken(r.Context(), t); err != nil {
		s.problem(w, r, fmt.Errorf("store project token: %w", err))
		return
	}
	out := toTokenJSON(t)
	out.Token = secret
	created(w, out.Links.Self, out)
}

func (s *server) getProjectToken(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleOwner)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	// TODO(api): the store has no lookup by id; a project holds few tokens.
	tokens, err := s.store.ListProjectTokens(r.Context(), project.ID)
	if err != nil {
		s.problem(w, r, fmt.Errorf("list project tokens: %w", err))
		return
	}
	id := chi.URLParam(r, "tokenId")
	for _, t := range tokens {
		if t.ID == id {
			writeJSON(w, http.StatusOK, toTokenJSON(t))
			return
		}
	}
	s.problem(w, r, fail(tenancy.ErrNotFound, "There is no such token in this project."))
}

func (s *server) deleteProjectToken(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleOwner)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	err = s.store.DeleteProjectToken(r.Context(), project.ID, chi.URLParam(r, "tokenId"))
	if err != nil {
		if isNotFound(err) {
			err = failCause(tenancy.ErrNotFound, "There is no such token in this project.", err)
		}
		s.problem(w, r, err)
		return
	}
	s.notify(project.ID)
	w.WriteHeader(http.StatusNoContent)
}
