package grafanatest

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// slug is Grafana's URL form of a title, close enough for links.
func slug(title string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(title) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// saveDashboard follows POST /api/dashboards/db: a dashboard whose uid exists
// is updated only if the version sent is the stored one, unless overwrite; a
// title already used in the folder by another dashboard is refused unless
// overwrite, which then replaces that dashboard.
func (s *Server) saveDashboard(w http.ResponseWriter, r *http.Request, o *org) {
	var body struct {
		Dashboard map[string]any `json:"dashboard"`
		FolderUID string         `json:"folderUid"`
		Overwrite bool           `json:"overwrite"`
		Message   string         `json:"message"`
	}
	if !decode(w, r, &body) {
		return
	}
	model := body.Dashboard
	title, _ := model["title"].(string)
	if strings.TrimSpace(title) == "" {
		reply(w, http.StatusBadRequest, map[string]any{"message": "Dashboard title cannot be empty",
			"status": "empty-name"})
		return
	}
	uid, _ := model["uid"].(string)
	if len(uid) > 40 {
		reply(w, http.StatusBadRequest, map[string]any{"message": "uid too long, max 40 characters",
			"status": "bad-request"})
		return
	}
	version, _ := model["version"].(float64)

	existing := o.dashboards[uid]
	if existing != nil && !body.Overwrite && int64(version) != existing.version {
		reply(w, http.StatusPreconditionFailed, map[string]any{"status": "version-mismatch",
			"message": "The dashboard has been changed by someone else"})
		return
	}
	for _, other := range o.dashboards {
		if other == existing || other.folder != body.FolderUID ||
			!strings.EqualFold(other.title, title) {
			continue
		}
		if !body.Overwrite {
			reply(w, http.StatusPreconditionFailed, map[string]any{"status": "name-exists",
				"message": "A dashboard with the same name in the folder already exists"})
			return
		}
		existing, uid = other, other.uid // overwrite takes the other one over
	}

	d := existing
	if d == nil {
		if uid == "" {
			uid = "gen" + itoa(s.nextID)
		}
		d = &dashboard{id: s.id(), uid: uid}
		o.dashboards[uid] = d
	}
	d.title, d.folder = title, body.FolderUID
	d.version++
	model["id"], model["uid"], model["version"] = d.id, d.uid, d.version
	d.model = model

	reply(w, http.StatusOK, map[string]any{"id": d.id, "uid": d.uid, "status": "success",
		"version": d.version, "slug": slug(title), "url": "/d/" + d.uid + "/" + slug(title),
		"folderUid": d.folder})
}

func (s *Server) dashboardByUID(w http.ResponseWriter, r *http.Request, o *org) {
	d, ok := o.dashboards[r.PathValue("uid")]
	if !ok {
		reply(w, http.StatusNotFound, msg("Dashboard not found"))
		return
	}
	reply(w, http.StatusOK, map[string]any{
		"dashboard": d.model,
		"meta": map[string]any{
			"type": "db", "canSave": true, "canEdit": true, "canAdmin": true,
			"canStar": true, "canDelete": true, "slug": slug(d.title),
			"url": "/d/" + d.uid + "/" + slug(d.title), "version": d.version,
			"created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
			"createdBy": s.user, "updatedBy": s.user, "folderUid": d.folder,
		},
	})
}

func (s *Server) deleteDashboard(w http.ResponseWriter, r *http.Request, o *org) {
	d, ok := o.dashboards[r.PathValue("uid")]
	if !ok {
		reply(w, http.StatusNotFound, msg("Dashboard not found"))
		return
	}
	delete(o.dashboards, d.uid)
	reply(w, http.StatusOK, map[string]any{"title": d.title, "uid": d.uid,
		"message": "Dashboard " + d.title + " deleted"})
}

// search answers GET /api/search for dashboards, filtered by every tag
// given, by type dash-db and by a title substring.
func (s *Server) search(w http.ResponseWriter, r *http.Request, o *org) {
	q := r.URL.Query()
	if t := q.Get("type"); t != "" && t != "dash-db" {
		reply(w, http.StatusOK, []any{})
		return
	}
	list := make([]*dashboard, 0, len(o.dashboards))
	for _, d := range o.dashboards {
		if matches(d, q["tag"], q.Get("query")) {
			list = append(list, d)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].title < list[j].title })
	out := []map[string]any{}
	for _, d := range list {
		out = append(out, map[string]any{"id": d.id, "uid": d.uid, "title": d.title,
			"uri": "db/" + slug(d.title), "url": "/d/" + d.uid + "/" + slug(d.title),
			"type": "dash-db", "tags": tags(d), "isStarred": false, "orgId": o.id})
	}
	reply(w, http.StatusOK, out)
}

// matches reports whether d has every tag and its title contains query.
func matches(d *dashboard, want []string, query string) bool {
	have := map[string]bool{}
	for _, t := range tags(d) {
		have[t] = true
	}
	for _, t := range want {
		if !have[t] {
			return false
		}
	}
	return strings.Contains(strings.ToLower(d.title), strings.ToLower(query))
}

// tags reads a stored dashboard's tags.
func tags(d *dashboard) []string {
	out := []string{}
	list, _ := d.model["tags"].([]any)
	for _, t := range list {
		if s, ok := t.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
