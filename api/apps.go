package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/tenancy"
)

// appCreate is the body of POST /projects/{projectId}/apps.
type appCreate struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	TargetPort int               `json:"targetPort"`
	Replicas   *int              `json:"replicas"`
	Env        map[string]string `json:"env"`
}

// appPatch is the merge patch of PATCH .../apps/{appId}; absent fields keep
// their value.
type appPatch struct {
	Image    *string `json:"image"`
	Replicas *int    `json:"replicas"`
}

func (s *server) listApps(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	page := pageParams(r)
	apps, next, err := s.store.ListApps(r.Context(), project.ID, page)
	if err != nil {
		s.problem(w, r, listError(err, "apps"))
		return
	}
	out := list[appJSON]{Items: make([]appJSON, 0, len(apps)), NextCursor: next,
		Links: pageLinks(projectPath(project.ID)+"/apps", page.Limit, page.Cursor, next)}
	out.Links.Project = projectPath(project.ID)
	for _, a := range apps {
		out.Items = append(out.Items, toAppJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) createApp(w http.ResponseWriter, r *http.Request) {
	var req appCreate
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	if fields := validateApp(&req); fields != nil {
		s.problem(w, r, invalid(fields...))
		return
	}
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}

	app := &tenancy.App{
		ProjectID: project.ID, Name: req.Name, Image: req.Image, TargetPort: req.TargetPort,
		Replicas: 1, Env: req.Env, Status: tenancy.StatusProvisioning,
	}
	if req.Replicas != nil {
		app.Replicas = *req.Replicas
	}
	if err := s.store.CreateApp(r.Context(), app); err != nil {
		if errors.Is(err, tenancy.ErrConflict) {
			detail := "The project already has an app named " + strconv.Quote(req.Name) + "."
			err = failCause(tenancy.ErrConflict, detail, err)
		}
		s.problem(w, r, err)
		return
	}
	s.notify(project.ID)
	out := toAppJSON(app)
	created(w, out.Links.Self, out)
}

func (s *server) getApp(w http.ResponseWriter, r *http.Request) {
	project, _, err := s.readableProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	app, err := s.store.AppByID(r.Context(), project.ID, chi.URLParam(r, "appId"))
	if err != nil {
		s.problem(w, r, appError(err))
		return
	}
	writeJSON(w, http.StatusOK, toAppJSON(app))
}

func (s *server) updateApp(w http.ResponseWriter, r *http.Request) {
	var req appPatch
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	var fields []tenancy.FieldError
	if req.Image != nil {
		fields = append(fields, validateImage("image", *req.Image)...)
	}
	if req.Replicas != nil {
		fields = append(fields, validateReplicas(*req.Replicas)...)
	}
	if fields != nil {
		s.problem(w, r, invalid(fields...))
		return
	}
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}

	appID := chi.URLParam(r, "appId")
	app, err := s.store.UpdateAppSpec(r.Context(), project.ID, appID, req.Image, req.Replicas)
	if err != nil {
		s.problem(w, r, appError(err))
		return
	}
	s.notify(project.ID)
	writeJSON(w, http.StatusOK, toAppJSON(app))
}

// deleteApp marks the app deleting for the reconciler, or removes it at
// once when no cluster is configured.
func (s *server) deleteApp(w http.ResponseWriter, r *http.Request) {
	project, err := s.ownedProject(r)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	appID := chi.URLParam(r, "appId")
	if s.cfg.ClusterConfigured {
		err = s.store.MarkAppDeleting(r.Context(), project.ID, appID)
	} else {
		err = s.store.DeleteApp(r.Context(), project.ID, appID)
	}
	if err != nil {
		s.problem(w, r, appError(err))
		return
	}
	s.notify(project.ID)
	w.WriteHeader(http.StatusAccepted)
}

// appError says "no such app" for a missing one.
func appError(err error) error {
	if isNotFound(err) {
		return failCause(tenancy.ErrNotFound, "There is no such app in this project.", err)
	}
	return fmt.Errorf("app: %w", err)
}
