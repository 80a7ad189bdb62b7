package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/tenancy"
)

// memberCreate is the body of POST /projects/{projectId}/members.
type memberCreate struct {
	Email string       `json:"email"`
	Role  tenancy.Role `json:"role"`
}

func (s *server) listMembers(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	members, err := s.store.ListMembers(r.Context(), project.ID)
	if err != nil {
		s.problem(w, r, fmt.Errorf("list members: %w", err))
		return
	}
	out := list[memberJSON]{Items: make([]memberJSON, 0, len(members)),
		Links: links{Self: projectPath(project.ID) + "/members", Project: projectPath(project.ID)}}
	for _, m := range members {
		out.Items = append(out.Items, toMemberJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) addMember(w http.ResponseWriter, r *http.Request) {
	var req memberCreate
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	if req.Role != tenancy.RoleOwner && req.Role != tenancy.RoleViewer {
		s.problem(w, r, invalid(field("role", "must be owner or viewer")))
		return
	}
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}

	email, _ := normalizeEmail(req.Email)
	u, err := s.store.UserByEmail(r.Context(), email)
	if err != nil {
		if isNotFound(err) {
			err = failCause(tenancy.ErrNotFound, "No user has signed up with this email.", err)
		}
		s.problem(w, r, err)
		return
	}
	m := &tenancy.Member{
		ProjectID: project.ID, UserID: u.ID, Email: u.Email, Name: u.Name, Role: req.Role,
	}
	if err := s.store.AddMember(r.Context(), m); err != nil {
		if errors.Is(err, tenancy.ErrConflict) {
			err = failCause(tenancy.ErrConflict, "This user is already a member.", err)
		}
		s.problem(w, r, err)
		return
	}
	s.notify(project.ID)
	out := toMemberJSON(m)
	created(w, out.Links.Self, out)
}

func (s *server) getMember(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	m, err := s.store.Member(r.Context(), project.ID, chi.URLParam(r, "userId"))
	if err != nil {
		s.problem(w, r, memberError(err))
		return
	}
	writeJSON(w, http.StatusOK, toMemberJSON(m))
}

// removeMember takes a user out of the project. The project's creator stays,
// so that a project always has an owner.
func (s *server) removeMember(w http.ResponseWriter, r *http.Request) {
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	userID := chi.URLParam(r, "userId")
	if userID == project.OwnerID {
		s.problem(w, r, fail(tenancy.ErrConflict,
			"The project's creator cannot be removed; delete the project instead."))
		return
	}
	if err := s.store.RemoveMember(r.Context(), project.ID, userID); err != nil {
		s.problem(w, r, memberError(err))
		return
	}
	s.notify(project.ID)
	w.WriteHeader(http.StatusNoContent)
}

func memberError(err error) error {
	if isNotFound(err) {
		return failCause(tenancy.ErrNotFound, "This user is not a member of the project.", err)
	}
	return fmt.Errorf("member: %w", err)
}
