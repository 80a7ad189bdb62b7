package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/internal/testenv"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/sqlstore"
)

// cheapPasswords keep argon2id fast in tests; one test uses the defaults.
var cheapPasswords = auth.PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

// clock is an injected clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend opens a migrated store of one kind.
type backend struct {
	name string
	open func(t *testing.T) tenancy.Store
}

var backends = []backend{
	{"sqlite", func(t *testing.T) tenancy.Store {
		return openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "canopy.db"))
	}},
	{"postgres", func(t *testing.T) tenancy.Store {
		return openStore(t, testenv.PostgresURL(t))
	}},
}

func openStore(t testing.TB, url string) tenancy.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// harness is one API in front of a real store, with an injected clock and
// response validation against openapi.yaml on every exchange.
type harness struct {
	t     testing.TB
	store tenancy.Store
	clock *clock
	srv   *server
	h     chi.Router
	logs  *bytes.Buffer
	keys  *auth.KeySet
}

func newHarness(t testing.TB, st tenancy.Store, mutate ...func(*Config)) *harness {
	t.Helper()
	keys, err := auth.LoadOrCreateSigningKey(context.Background(), st, "")
	if err != nil {
		t.Fatalf("load signing key: %v", err)
	}
	logs := &bytes.Buffer{}
	c := newClock()
	cfg := Config{
		Store: st, Keys: keys, Now: c.Now, PasswordParams: cheapPasswords,
		Logger:      slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil)),
		AdminEmails: []string{"admin@example.com"},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	return &harness{t: t, store: st, clock: c, srv: s, h: s.routes(), logs: logs, keys: keys}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// response is what the API answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d answer %q: %v", r.status, r.body, err)
	}
}

func (r *response) problem(t *testing.T) Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (status %d, body %s)", ct, r.status, r.body)
	}
	var p Problem
	r.json(t, &p)
	if p.Status != r.status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v does not match status %d", p, r.status)
	}
	return p
}

// req describes one request.
type req struct {
	method, path string
	body         any // marshalled to JSON unless []byte or string
	token        string
	contentType  string
	remoteAddr   string
}

// do sends rq and checks the answer against the document.
func (h *harness) do(rq req) *response {
	h.t.Helper()
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			h.t.Fatalf("marshal body: %v", err)
		}
		body = bytes.NewReader(js)
	}
	r := httptest.NewRequest(rq.method, rq.path, body)
	if body != nil {
		ct := rq.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if rq.token != "" {
		r.Header.Set("Authorization", "Bearer "+rq.token)
	}
	if rq.remoteAddr != "" {
		r.RemoteAddr = rq.remoteAddr
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	resp := &response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	h.checkResponse(rq, resp)
	return resp
}

// checkResponse validates an answer of a documented operation against
// openapi.yaml, status included, so the Go types cannot drift from it.
func (h *harness) checkResponse(rq req, resp *response) {
	h.t.Helper()
	rctx := chi.NewRouteContext()
	u := strings.SplitN(rq.path, "?", 2)[0]
	pattern := h.h.Find(rctx, rq.method, u)
	route := h.srv.spec.ops[rq.method+" "+pattern]
	if route == nil {
		return // unrouted paths answer 404/405 problems, checked by their tests
	}
	params := map[string]string{}
	for i, k := range rctx.URLParams.Keys {
		params[k] = rctx.URLParams.Values[i]
	}
	r := httptest.NewRequest(rq.method, rq.path, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: r, PathParams: params, Route: route,
		},
		Status: resp.status, Header: resp.header,
		Body:    io.NopCloser(bytes.NewReader(resp.body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if ct := resp.header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") {
		return // the YAML document, the docs page and /metrics are text
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		h.t.Errorf("%s %s answered %d not as documented: %v\nbody: %s",
			rq.method, rq.path, resp.status, err, resp.body)
	}
}

// user is a signed-up, signed-in account.
type user struct {
	id, email, access, refresh string
}

// signUp registers and logs in a new user.
func (h *harness) signUp(email string) user {
	h.t.Helper()
	resp := h.do(req{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": email, "password": "correct horse battery", "name": "Test " + email}})
	if resp.status != http.StatusCreated {
		h.t.Fatalf("register %s: %d %s", email, resp.status, resp.body)
	}
	var u userJSON
	resp.json(h.t, &u)
	pair := h.login(email, "correct horse battery", "")
	return user{id: u.ID, email: email, access: pair.AccessToken, refresh: pair.RefreshToken}
}

func (h *harness) login(email, password, addr string) tokenPair {
	h.t.Helper()
	resp := h.do(req{method: "POST", path: "/api/v1/auth/login", remoteAddr: addr,
		body: map[string]string{"email": email, "password": password}})
	if resp.status != http.StatusOK {
		h.t.Fatalf("login %s: %d %s", email, resp.status, resp.body)
	}
	var pair tokenPair
	resp.json(h.t, &pair)
	return pair
}

// createProject makes a project and returns its id.
func (h *harness) createProject(u user, name string) string {
	h.t.Helper()
	resp := h.do(req{method: "POST", path: "/api/v1/projects", token: u.access,
		body: map[string]string{"name": name}})
	if resp.status != http.StatusCreated {
		h.t.Fatalf("create project %s: %d %s", name, resp.status, resp.body)
	}
	var p projectDetails
	resp.json(h.t, &p)
	return p.ID
}

// uniq makes names unique within a shared database.
func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// otherKey is a signing key Canopy does not know.
func otherKey(t *testing.T) ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}
