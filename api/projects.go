package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/tenancy"
)

// projectCreate is the body of POST /projects.
type projectCreate struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

var errNoProject = fail(tenancy.ErrNotFound, "There is no such project.")

// projectAccess loads the project and checks that the caller may act on it
// with at least role need. A project the caller may not see is "not found",
// never "forbidden"; a viewer asking to change it is forbidden. Admins read
// every project.
func (s *server) projectAccess(
	ctx context.Context, id string, need tenancy.Role,
) (*tenancy.Project, *tenancy.Member, error) {
	p := principalFrom(ctx)
	project, err := s.store.ProjectByID(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return nil, nil, errNoProject
		}
		return nil, nil, fmt.Errorf("find project id=%q: %w", id, err)
	}
	if p.TokenProject != "" {
		if p.TokenProject != project.ID || need != tenancy.RoleViewer {
			return nil, nil, errNoProject
		}
		return project, nil, nil
	}

	m, err := s.store.Member(ctx, project.ID, p.UserID)
	switch {
	case isNotFound(err) && p.Admin && need == tenancy.RoleViewer:
		return project, nil, nil
	case isNotFound(err) && p.Admin:
		return nil, nil, fail(tenancy.ErrForbidden,
			"Admins read every project; only its owners change it.")
	case isNotFound(err):
		return nil, nil, errNoProject
	case err != nil:
		return nil, nil, fmt.Errorf("find member: %w", err)
	case need == tenancy.RoleOwner && m.Role != tenancy.RoleOwner:
		return nil, nil, fail(tenancy.ErrForbidden, "Only the project's owners may do this.")
	}
	return project, m, nil
}

// readableProject is projectAccess for reading the project in the path.
func (s *server) readableProject(r *http.Request) (*tenancy.Project, *tenancy.Member, error) {
	return s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleViewer)
}

// ownedProject is projectAccess for changes: owners only, and not while the
// project is being deleted.
func (s *server) ownedProject(r *http.Request) (*tenancy.Project, error) {
	project, _, err := s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleOwner)
	if err != nil {
		return nil, err
	}
	if project.Status == tenancy.StatusDeleting {
		return nil, fail(tenancy.ErrConflict, "The project is being deleted.")
	}
	return project, nil
}

// notify tells the reconciler and the Grafana sync that a project changed.
func (s *server) notify(projectID string) {
	if s.cfg.Notifier != nil {
		s.cfg.Notifier.ProjectChanged(projectID)
	}
}

// pageParams reads limit and cursor; the document has checked their form.
func pageParams(r *http.Request) tenancy.Page {
	q := r.URL.Query()
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit < 1 {
		limit = 20
	}
	return tenancy.Page{Limit: min(limit, 100), Cursor: q.Get("cursor")}
}

// listError turns a store's refusal of a cursor into a 400.
func listError(err error, what string) error {
	if errors.Is(err, tenancy.ErrInvalid) {
		return &apiError{kind: errBadRequest, detail: "The cursor is not one this list returned.",
			fields: []tenancy.FieldError{field("cursor", "is not a cursor returned by this list")}}
	}
	return fmt.Errorf("list %s: %w", what, err)
}

func (s *server) listProjects(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	page := pageParams(r)
	filter := tenancy.ProjectFilter{MemberID: p.UserID, Page: page}
	if p.Admin {
		filter.MemberID = ""
	}

	// On SQLite, an encoded list is kept until the database changes.
	version, cacheable := s.listVersion(r.Context())
	key := listKey{memberID: filter.MemberID, limit: page.Limit, cursor: page.Cursor}
	if cacheable {
		if body := s.lists.get(version, key); body != nil {
			writeEncoded(w, body)
			return
		}
	}

	projects, next, err := s.store.ListProjects(r.Context(), filter)
	if err != nil {
		s.problem(w, r, listError(err, "projects"))
		return
	}
	s.writeProjectList(w, projects, page, next, func(body []byte) {
		if cacheable {
			s.lists.put(version, key, body)
		}
	})
}

// listVersion asks the store for its data version, if it has one.
func (s *server) listVersion(ctx context.Context) (any, bool) {
	dv, ok := s.store.(dataVersioner)
	if !ok {
		return nil, false
	}
	v, ok, err := dv.DataVersion(ctx)
	if err != nil {
		s.log.Warn("project list cache bypassed", "error", err)
		return nil, false
	}
	return v, ok
}

func (s *server) createProject(w http.ResponseWriter, r *http.Request) {
	var req projectCreate
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	fields := validateProjectName(req.Name, s.cfg.NamespacePrefix, s.cfg.ReservedNamespaces)
	if fields != nil {
		s.problem(w, r, invalid(fields...))
		return
	}

	p := principalFrom(r.Context())
	project := &tenancy.Project{
		Name: req.Name, Description: strings.TrimSpace(req.Description),
		Namespace: s.cfg.NamespacePrefix + req.Name, OwnerID: p.UserID,
		Status: tenancy.StatusProvisioning,
	}
	if err := s.store.CreateProject(r.Context(), project); err != nil {
		if errors.Is(err, tenancy.ErrConflict) {
			detail := "A project named " + strconv.Quote(req.Name) + " already exists."
			err = failCause(tenancy.ErrConflict, detail, err)
		}
		s.problem(w, r, err)
		return
	}
	s.notify(project.ID)

	out := projectDetails{
		projectJSON: s.projectJSON(project), Apps: []appJSON{}, Dashboards: s.dashboards(project),
	}
	out.Role = tenancy.RoleOwner
	created(w, out.Links.Self, out)
}

// dashboards lists the project's Grafana dashboards, never nil.
func (s *server) dashboards(p *tenancy.Project) []Dashboard {
	if s.cfg.Dashboards == nil {
		return []Dashboard{}
	}
	if d := s.cfg.Dashboards(p); d != nil {
		return d
	}
	return []Dashboard{}
}

func (s *server) getProject(w http.ResponseWriter, r *http.Request) {
	project, m, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	apps, _, err := s.store.ListApps(r.Context(), project.ID, tenancy.Page{Limit: 100})
	if err != nil {
		s.problem(w, r, fmt.Errorf("list apps: %w", err))
		return
	}

	out := projectDetails{projectJSON: s.projectJSON(project), Apps: make([]appJSON, 0, len(apps)),
		Dashboards: s.dashboards(project)}
	if m != nil {
		out.Role = m.Role
	}
	for _, a := range apps {
		out.Apps = append(out.Apps, toAppJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteProject marks the project deleting for the reconciler to remove
// its namespace and dashboards. With no cluster nothing would ever finish
// the job, so the row goes at once.
func (s *server) deleteProject(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.projectAccess(r.Context(), chi.URLParam(r, "projectId"), tenancy.RoleOwner)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	if s.cfg.ClusterConfigured {
		err = s.store.MarkProjectDeleting(r.Context(), project.ID)
	} else {
		err = s.store.DeleteProject(r.Context(), project.ID) // nothing to tear down
	}
	project.Status = tenancy.StatusDeleting
	if err != nil {
		s.problem(w, r, fmt.Errorf("delete project id=%q: %w", project.ID, err))
		return
	}
	s.notify(project.ID)
	writeJSON(w, http.StatusAccepted, s.projectJSON(project))
}
