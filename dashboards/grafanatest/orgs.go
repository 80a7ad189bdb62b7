package grafanatest

import (
	"net/http"
	"sort"
)

func orgJSON(o *org) map[string]any {
	return map[string]any{"id": o.id, "name": o.name, "address": map[string]any{
		"address1": "", "address2": "", "city": "", "zipCode": "", "state": "", "country": "",
	}}
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Name == "" {
		reply(w, http.StatusBadRequest, msg("Organization name is required"))
		return
	}
	if s.orgByNameLocked(body.Name) != nil {
		reply(w, http.StatusConflict, msg("Organization name taken"))
		return
	}
	o := s.newOrg(body.Name)
	o.members[s.adminID] = "Admin" // the creator becomes the org's admin
	reply(w, http.StatusOK, map[string]any{"orgId": o.id, "message": "Organization created"})
}

func (s *Server) listOrgs(w http.ResponseWriter, _ *http.Request) {
	out := []map[string]any{}
	for _, o := range s.sortedOrgs() {
		out = append(out, map[string]any{"id": o.id, "name": o.name})
	}
	reply(w, http.StatusOK, out)
}

// sortedOrgs lists organizations by id.
func (s *Server) sortedOrgs() []*org {
	out := make([]*org, 0, len(s.orgs))
	for _, o := range s.orgs {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *Server) orgByName(w http.ResponseWriter, r *http.Request) {
	o := s.orgByNameLocked(r.PathValue("name"))
	if o == nil {
		reply(w, http.StatusNotFound, msg("Organization not found"))
		return
	}
	reply(w, http.StatusOK, orgJSON(o))
}

func (s *Server) orgByID(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	o, found := s.orgs[id]
	if !found {
		reply(w, http.StatusNotFound, msg("Organization not found"))
		return
	}
	reply(w, http.StatusOK, orgJSON(o))
}

func (s *Server) updateOrg(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	var body struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &body) {
		return
	}
	o, found := s.orgs[id]
	if !found {
		reply(w, http.StatusNotFound, msg("Organization not found"))
		return
	}
	if other := s.orgByNameLocked(body.Name); other != nil && other != o {
		reply(w, http.StatusBadRequest, msg("Organization name taken"))
		return
	}
	o.name = body.Name
	reply(w, http.StatusOK, msg("Organization updated"))
}

func (s *Server) deleteOrg(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if _, found := s.orgs[id]; !found {
		reply(w, http.StatusNotFound, msg("Failed to delete organization. ID not found"))
		return
	}
	if id == MainOrgID {
		reply(w, http.StatusBadRequest, msg("Can not delete the main organization"))
		return
	}
	delete(s.orgs, id)
	reply(w, http.StatusOK, msg("Organization deleted"))
}

// orgUsersJSON lists an organization's members by user id.
func (s *Server) orgUsersJSON(o *org) []map[string]any {
	ids := make([]int64, 0, len(o.members))
	for id := range o.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := []map[string]any{}
	for _, id := range ids {
		u := s.users[id]
		out = append(out, map[string]any{
			"orgId": o.id, "userId": u.id, "email": u.email, "login": u.login,
			"name": u.name, "role": o.members[id], "avatarUrl": "",
			"lastSeenAt": "2026-01-01T00:00:00Z", "lastSeenAtAge": "1d", "authLabels": []string{},
		})
	}
	return out
}

// pathOrg resolves the {id} organization of an admin org-users call.
func (s *Server) pathOrg(w http.ResponseWriter, r *http.Request) (*org, bool) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return nil, false
	}
	o, found := s.orgs[id]
	if !found {
		reply(w, http.StatusNotFound, msg("Organization not found"))
		return nil, false
	}
	return o, true
}

func (s *Server) listOrgUsers(w http.ResponseWriter, r *http.Request) {
	if o, ok := s.pathOrg(w, r); ok {
		reply(w, http.StatusOK, s.orgUsersJSON(o))
	}
}

func (s *Server) listCurrentOrgUsers(w http.ResponseWriter, _ *http.Request, o *org) {
	reply(w, http.StatusOK, s.orgUsersJSON(o))
}

// validRole accepts Grafana's basic organization roles.
func validRole(r string) bool { return r == "Viewer" || r == "Editor" || r == "Admin" }

func (s *Server) addOrgUser(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	var body struct {
		LoginOrEmail string `json:"loginOrEmail"`
		Role         string `json:"role"`
	}
	if !decode(w, r, &body) {
		return
	}
	if !validRole(body.Role) {
		reply(w, http.StatusBadRequest, msg("Invalid role specified"))
		return
	}
	u := s.userByLoginOrEmail(body.LoginOrEmail)
	if u == nil {
		reply(w, http.StatusNotFound, msg("User not found"))
		return
	}
	if o.members[u.id] != "" {
		reply(w, http.StatusConflict, msg("User is already member of this organization"))
		return
	}
	o.members[u.id] = body.Role
	reply(w, http.StatusOK, map[string]any{"message": "User added to organization", "userId": u.id})
}

func (s *Server) updateOrgUser(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	uid, ok := pathID(w, r, "userId")
	if !ok {
		return
	}
	var body struct {
		Role string `json:"role"`
	}
	if !decode(w, r, &body) {
		return
	}
	if !validRole(body.Role) {
		reply(w, http.StatusBadRequest, msg("Invalid role specified"))
		return
	}
	if o.members[uid] == "" {
		reply(w, http.StatusNotFound, msg("User not found"))
		return
	}
	if o.members[uid] == "Admin" && body.Role != "Admin" && s.admins(o) == 1 {
		reply(w, http.StatusBadRequest,
			msg("Cannot change role so that there is no organization admin left"))
		return
	}
	o.members[uid] = body.Role
	reply(w, http.StatusOK, msg("Organization user updated"))
}

func (s *Server) removeOrgUser(w http.ResponseWriter, r *http.Request) {
	o, ok := s.pathOrg(w, r)
	if !ok {
		return
	}
	uid, ok := pathID(w, r, "userId")
	if !ok {
		return
	}
	if o.members[uid] == "" {
		reply(w, http.StatusNotFound, msg("User not found"))
		return
	}
	if o.members[uid] == "Admin" && s.admins(o) == 1 {
		reply(w, http.StatusBadRequest, msg("Cannot remove last organization admin"))
		return
	}
	delete(o.members, uid)
	reply(w, http.StatusOK, msg("User removed from organization"))
}

// admins counts an organization's Admin members.
func (s *Server) admins(o *org) int {
	n := 0
	for _, role := range o.members {
		if role == "Admin" {
			n++
		}
	}
	return n
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Login    string `json:"login"`
		Password string `json:"password"`
		OrgID    int64  `json:"orgId"`
	}
	if !decode(w, r, &body) {
		return
	}
	if body.Login == "" {
		body.Login = body.Email
	}
	if body.Login == "" || body.Password == "" {
		reply(w, http.StatusBadRequest, msg("bad request data"))
		return
	}
	if s.userByLoginOrEmail(body.Login) != nil ||
		(body.Email != "" && s.userByLoginOrEmail(body.Email) != nil) {
		reply(w, http.StatusPreconditionFailed, msg("User already exists"))
		return
	}

	// Grafana puts a new user in the given organization, else in the main
	// one (auto_assign_org), with the auto_assign_org_role (Viewer).
	orgID := body.OrgID
	if orgID == 0 {
		orgID = MainOrgID
	}
	o, found := s.orgs[orgID]
	if !found {
		reply(w, http.StatusBadRequest, msg("Organization not found"))
		return
	}
	u := &user{id: s.id(), login: body.Login, email: body.Email, name: body.Name}
	s.users[u.id] = u
	o.members[u.id] = "Viewer"
	reply(w, http.StatusOK, map[string]any{"id": u.id, "uid": "u" + itoa(u.id),
		"message": "User created"})
}

func (s *Server) lookupUser(w http.ResponseWriter, r *http.Request) {
	u := s.userByLoginOrEmail(r.URL.Query().Get("loginOrEmail"))
	if u == nil {
		reply(w, http.StatusNotFound, msg("user not found"))
		return
	}
	reply(w, http.StatusOK, map[string]any{"id": u.id, "uid": "u" + itoa(u.id),
		"email": u.email, "name": u.name, "login": u.login, "orgId": MainOrgID,
		"isGrafanaAdmin": u.serverAdmin, "authLabels": []string{}})
}
