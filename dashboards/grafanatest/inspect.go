package grafanatest

import "strings"

// The methods below act on the stand-in directly, the way a person clicking in
// Grafana would: they bypass the HTTP API and count no writes.

// Org describes one organization as the stand-in holds it.
type Org struct {
	ID   int64
	Name string
	// Members maps each member's email (login when it has none) to its role.
	Members map[string]string
	// DataSources maps uid to data source.
	DataSources map[string]DataSource
	// Dashboards maps uid to the stored version.
	Dashboards map[string]int64
}

// DataSource is a stored data source, secrets included.
type DataSource struct {
	Name, Type, URL string
	IsDefault       bool
	JSONData        map[string]any
	SecureJSONData  map[string]string
	Version         int64
}

// OrgByName returns the organization of that name, if there is one.
func (s *Server) OrgByName(name string) (Org, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgByNameLocked(name)
	if o == nil {
		return Org{}, false
	}
	return s.snapshot(o), true
}

// Orgs returns every organization, by id.
func (s *Server) Orgs() []Org {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Org
	for _, o := range s.sortedOrgs() {
		out = append(out, s.snapshot(o))
	}
	return out
}

// snapshot copies o.
func (s *Server) snapshot(o *org) Org {
	out := Org{ID: o.id, Name: o.name, Members: map[string]string{},
		DataSources: map[string]DataSource{}, Dashboards: map[string]int64{}}
	for id, role := range o.members {
		u := s.users[id]
		key := u.email
		if u.id == s.adminID || key == "" {
			key = u.login
		}
		out.Members[key] = role
	}
	for uid, d := range o.datasources {
		sec := map[string]string{}
		for k, v := range d.secure {
			sec[k] = v
		}
		out.DataSources[uid] = DataSource{Name: d.name, Type: d.typ, URL: d.url,
			IsDefault: d.isDefault, JSONData: d.jsonData, SecureJSONData: sec, Version: d.version}
	}
	for uid, d := range o.dashboards {
		out.Dashboards[uid] = d.version
	}
	return out
}

// CreateOrg makes an organization by hand, with the admin as its Admin.
func (s *Server) CreateOrg(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.newOrg(name)
	o.members[s.adminID] = "Admin"
	return o.id
}

// DeleteDashboard removes a dashboard by hand.
func (s *Server) DeleteDashboard(orgID int64, uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[orgID]
	if !ok || o.dashboards[uid] == nil {
		return false
	}
	delete(o.dashboards, uid)
	return true
}

// EditDashboardTitle changes a stored dashboard's title by hand, as a save
// from the UI would, bumping its version.
func (s *Server) EditDashboardTitle(orgID int64, uid, title string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[orgID]
	if !ok || o.dashboards[uid] == nil {
		return false
	}
	d := o.dashboards[uid]
	d.title = title
	d.version++
	d.model["title"], d.model["version"] = title, d.version
	return true
}

// DeleteDataSource removes a data source by hand.
func (s *Server) DeleteDataSource(orgID int64, uid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[orgID]
	if !ok || o.datasources[uid] == nil {
		return false
	}
	delete(o.datasources, uid)
	return true
}

// RemoveMember takes a user out of an organization by hand, by email.
func (s *Server) RemoveMember(orgID int64, email string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[orgID]
	if !ok {
		return false
	}
	for id := range o.members {
		if strings.EqualFold(s.users[id].email, email) {
			delete(o.members, id)
			return true
		}
	}
	return false
}
