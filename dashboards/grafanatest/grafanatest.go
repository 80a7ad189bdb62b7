// Package grafanatest is a stand-in for Grafana's HTTP API, for tests that
// cannot run Grafana. It answers the calls Canopy's sync makes the way
// Grafana's HTTP API documentation describes them: basic auth, organizations
// and the X-Grafana-Org-Id switch, data sources whose secureJsonData is never
// read back, dashboards with versions and overwrite, organization users and
// server-admin user management. It counts write calls and can play a Grafana
// that is down or failing.
//
// It holds state in memory only and owns nothing outside its tests.
package grafanatest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// MainOrgID is the organization every Grafana starts with.
const MainOrgID int64 = 1

// Mode is how the stand-in answers.
type Mode int

// Modes of the stand-in.
const (
	// Up answers normally.
	Up Mode = iota
	// Unavailable answers every request with 503.
	Unavailable
	// Refusing drops every connection without an answer.
	Refusing
)

// Server is a running stand-in Grafana.
type Server struct {
	// URL is the base URL, such as http://127.0.0.1:41234.
	URL string

	srv      *httptest.Server
	user     string
	password string

	mu      sync.Mutex
	mode    Mode
	writes  int
	nextID  int64
	orgs    map[int64]*org
	users   map[int64]*user
	adminID int64
}

type org struct {
	id          int64
	name        string
	members     map[int64]string // user id → role
	datasources map[string]*datasource
	dashboards  map[string]*dashboard
}

type user struct {
	id           int64
	login, email string
	name         string
	serverAdmin  bool
}

type datasource struct {
	id        int64
	uid       string
	name      string
	typ       string
	url       string
	access    string
	isDefault bool
	jsonData  map[string]any
	secure    map[string]string
	version   int64
}

type dashboard struct {
	id      int64
	uid     string
	title   string
	folder  string
	version int64
	model   map[string]any
}

// New starts a stand-in whose only account is a server admin with the given
// credentials, member of the main organization as Admin. It stops with t.
func New(t testing.TB, adminUser, adminPassword string) *Server {
	t.Helper()
	s := &Server{
		user:     adminUser,
		password: adminPassword,
		nextID:   1,
		orgs:     map[int64]*org{},
		users:    map[int64]*user{},
	}
	s.adminID = s.id()
	s.users[s.adminID] = &user{id: s.adminID, login: adminUser, email: "admin@localhost",
		name: "admin", serverAdmin: true}
	main := s.newOrg("Main Org.")
	main.members[s.adminID] = "Admin"

	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// id hands out the next numeric id; ids are unique across kinds.
func (s *Server) id() int64 {
	id := s.nextID
	s.nextID++
	return id
}

// newOrg stores an empty organization.
func (s *Server) newOrg(name string) *org {
	o := &org{id: s.id(), name: name, members: map[int64]string{},
		datasources: map[string]*datasource{}, dashboards: map[string]*dashboard{}}
	if len(s.orgs) == 0 {
		o.id = MainOrgID
	}
	s.orgs[o.id] = o
	return o
}

// SetMode switches how the stand-in answers from now on.
func (s *Server) SetMode(m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
}

// Writes is the number of non-GET API calls received while up.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// routes maps the API calls the stand-in answers.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/orgs", s.createOrg)
	mux.HandleFunc("GET /api/orgs", s.listOrgs)
	mux.HandleFunc("GET /api/orgs/{id}", s.orgByID)
	mux.HandleFunc("PUT /api/orgs/{id}", s.updateOrg)
	mux.HandleFunc("DELETE /api/orgs/{id}", s.deleteOrg)
	mux.HandleFunc("GET /api/orgs/{a}/{b}", s.orgsTwoSegments)
	mux.HandleFunc("POST /api/orgs/{id}/users", s.addOrgUser)
	mux.HandleFunc("PATCH /api/orgs/{id}/users/{userId}", s.updateOrgUser)
	mux.HandleFunc("DELETE /api/orgs/{id}/users/{userId}", s.removeOrgUser)
	mux.HandleFunc("GET /api/org/users", s.inOrg(s.listCurrentOrgUsers))
	mux.HandleFunc("GET /api/datasources", s.inOrg(s.listDataSources))
	mux.HandleFunc("GET /api/datasources/uid/{uid}", s.inOrg(s.dataSourceByUID))
	mux.HandleFunc("POST /api/datasources", s.inOrg(s.addDataSource))
	mux.HandleFunc("PUT /api/datasources/uid/{uid}", s.inOrg(s.updateDataSource))
	mux.HandleFunc("DELETE /api/datasources/uid/{uid}", s.inOrg(s.deleteDataSource))
	mux.HandleFunc("POST /api/dashboards/db", s.inOrg(s.saveDashboard))
	mux.HandleFunc("GET /api/dashboards/uid/{uid}", s.inOrg(s.dashboardByUID))
	mux.HandleFunc("DELETE /api/dashboards/uid/{uid}", s.inOrg(s.deleteDashboard))
	mux.HandleFunc("GET /api/search", s.inOrg(s.search))
	mux.HandleFunc("POST /api/admin/users", s.createUser)
	mux.HandleFunc("GET /api/users/lookup", s.lookupUser)
	return s.gate(mux)
}

// orgsTwoSegments serves GET /api/orgs/name/{name} and GET
// /api/orgs/{id}/users, which one mux pattern cannot tell apart.
func (s *Server) orgsTwoSegments(w http.ResponseWriter, r *http.Request) {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "name":
		r.SetPathValue("name", b)
		s.orgByName(w, r)
	case b == "users":
		r.SetPathValue("id", a)
		s.listOrgUsers(w, r)
	default:
		reply(w, http.StatusNotFound, msg("Not found"))
	}
}

// gate plays the mode, counts writes and checks basic auth, holding the lock
// for the whole request so that handlers see one consistent state.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()

		switch s.mode {
		case Unavailable:
			reply(w, http.StatusServiceUnavailable, msg("Service Unavailable"))
			return
		case Refusing:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}

		if r.Method != http.MethodGet {
			s.writes++
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != s.user || p != s.password {
			reply(w, http.StatusUnauthorized, msg("Invalid username or password"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// orgHandler serves a call scoped to the organization the request selects.
type orgHandler func(w http.ResponseWriter, r *http.Request, o *org)

// inOrg resolves the organization of an org-scoped call: X-Grafana-Org-Id,
// else the admin's current organization (the main one). A user who is not a
// member of that organization is refused.
func (s *Server) inOrg(h orgHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := MainOrgID
		if v := r.Header.Get("X-Grafana-Org-Id"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				reply(w, http.StatusBadRequest, msg("invalid X-Grafana-Org-Id"))
				return
			}
			id = n
		}
		o, ok := s.orgs[id]
		if !ok || o.members[s.adminID] == "" {
			reply(w, http.StatusForbidden, msg("You'll need additional permissions to "+
				"perform this action. User is not a member of the organization"))
			return
		}
		h(w, r, o)
	}
}

// reply writes v as JSON with status code.
func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// msg is Grafana's usual {"message": ...} body.
func msg(m string) map[string]any { return map[string]any{"message": m} }

// decode reads a JSON body into v, answering 400 when it is not JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		reply(w, http.StatusBadRequest, msg("bad request data"))
		return false
	}
	return true
}

// pathID reads a numeric path parameter, answering 400 when it is not one.
func pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		reply(w, http.StatusBadRequest, msg(name+" is invalid"))
		return 0, false
	}
	return id, true
}

// orgByName finds an organization by name, case-insensitively as Grafana does.
func (s *Server) orgByNameLocked(name string) *org {
	for _, o := range s.orgs {
		if strings.EqualFold(o.name, name) {
			return o
		}
	}
	return nil
}

// userByLoginOrEmail finds a user as Grafana's lookup does.
func (s *Server) userByLoginOrEmail(v string) *user {
	for _, u := range s.users {
		if u.login == v || strings.EqualFold(u.email, v) {
			return u
		}
	}
	return nil
}
