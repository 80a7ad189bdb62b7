package api

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
)

// apiSuite runs unchanged on every backend.
var apiSuite = []struct {
	name string
	run  func(t *testing.T, st tenancy.Store)
}{
	{"AuthFlow", testAuthFlow},
	{"RefreshReuseRevokesFamily", testRefreshReuse},
	{"LoginRateLimits", testLoginRateLimits},
	{"LoginSameAnswer", testLoginSameAnswer},
	{"BadTokens", testBadTokens},
	{"Visibility", testVisibility},
	{"Pagination", testPagination},
	{"ProjectsNoCluster", testProjectsNoCluster},
	{"ProjectDeleteWithCluster", testProjectDeleteWithCluster},
	{"Apps", testApps},
	{"Members", testMembers},
	{"ProjectTokens", testProjectTokens},
	{"Validation", testValidation},
	{"BadInput", testBadInput},
	{"Prometheus", testPrometheus},
	{"Usage", testUsage},
}

func TestAPI(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t)
			for _, tc := range apiSuite {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, st) })
			}
		})
	}
}

func testAuthFlow(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	email := uniq("ada") + "@example.com"

	resp := h.do(req{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": strings.ToUpper(email), "password": "correct horse battery", "name": "Ada"}})
	if resp.status != http.StatusCreated || resp.header.Get("Location") == "" {
		t.Fatalf("register: %d Location=%q %s", resp.status, resp.header.Get("Location"), resp.body)
	}
	var u userJSON
	resp.json(t, &u)
	if u.Email != email || u.Links.Self == "" {
		t.Errorf("registered user %+v, want email %q lower-cased and links", u, email)
	}
	stored, err := st.UserByEmail(context.Background(), email)
	if err != nil || !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$") {
		t.Fatalf("stored user %+v, %v: want an argon2id PHC hash", stored, err)
	}

	// The same email again, in another case, is taken.
	resp = h.do(req{method: "POST", path: "/api/v1/auth/register",
		body: map[string]string{"email": email, "password": "another password!", "name": "Eve"}})
	if resp.status != http.StatusConflict {
		t.Errorf("second register: %d, want 409", resp.status)
	}
	resp.problem(t)

	pair := h.login(email, "correct horse battery", "")
	if pair.TokenType != "Bearer" || pair.ExpiresIn != 900 {
		t.Errorf("token pair %+v: want Bearer and 900 s", pair)
	}
	resp = h.do(req{method: "GET", path: "/api/v1/users/me", token: pair.AccessToken})
	var me userJSON
	resp.json(t, &me)
	if resp.status != 200 || me.ID != u.ID {
		t.Fatalf("me: %d %+v, want user %s", resp.status, me, u.ID)
	}

	// Refresh rotates: a new refresh token, and the new access token works.
	resp = h.do(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refreshToken": pair.RefreshToken}})
	var next tokenPair
	resp.json(t, &next)
	if resp.status != 200 || next.RefreshToken == pair.RefreshToken || next.RefreshToken == "" {
		t.Fatalf("refresh: %d %+v", resp.status, next)
	}
	if got := h.do(req{method: "GET", path: "/api/v1/users/me", token: next.AccessToken}).status; got != 200 {
		t.Errorf("me with refreshed token: %d", got)
	}

	// Logout ends the sign-in: the current refresh token no longer works.
	if got := h.do(req{method: "POST", path: "/api/v1/auth/logout", body: map[string]string{"refreshToken": next.RefreshToken}}).status; got != 204 {
		t.Fatalf("logout: %d", got)
	}
	resp = h.do(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refreshToken": next.RefreshToken}})
	if resp.status != http.StatusUnauthorized {
		t.Errorf("refresh after logout: %d, want 401", resp.status)
	}
	resp.problem(t)
}

func testRefreshReuse(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("reuse") + "@example.com")
	other := h.login(u.email, "correct horse battery", "") // a second, separate sign-in

	refresh := func(tok string) (int, tokenPair) {
		resp := h.do(req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]string{"refreshToken": tok}})
		var p tokenPair
		if resp.status == 200 {
			resp.json(t, &p)
		}
		return resp.status, p
	}
	status, second := refresh(u.refresh)
	if status != 200 {
		t.Fatalf("first refresh: %d", status)
	}
	// The spent first token comes back: the whole family goes.
	if status, _ := refresh(u.refresh); status != 401 {
		t.Fatalf("reuse of spent token: %d, want 401", status)
	}
	if status, _ := refresh(second.RefreshToken); status != 401 {
		t.Errorf("token issued after the spent one still works (%d): family not revoked", status)
	}
	stored, err := st.RefreshTokenByHash(context.Background(), hashOf(second.RefreshToken))
	if err != nil || stored.RevokedAt == nil {
		t.Errorf("stored second token %+v, %v: want revoked", stored, err)
	}
	// Another sign-in of the same user is another family and survives.
	if status, _ := refresh(other.RefreshToken); status != 200 {
		t.Errorf("refresh of an unrelated sign-in: %d, want 200", status)
	}

	// Expired refresh tokens are refused.
	fresh := h.login(u.email, "correct horse battery", "")
	h.clock.Advance(DefaultRefreshTTL + time.Minute)
	if status, _ := refresh(fresh.RefreshToken); status != 401 {
		t.Errorf("expired refresh token: %d, want 401", status)
	}
}

func testLoginRateLimits(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("limits") + "@example.com")
	attempt := func(email, password, addr string) *response {
		return h.do(req{method: "POST", path: "/api/v1/auth/login", remoteAddr: addr,
			body: map[string]string{"email": email, "password": password}})
	}

	// Per address: 10 attempts a minute, whatever the accounts.
	for i := range 10 {
		if got := attempt(uniq("nobody")+"@example.com", "wrong password", "198.18.0.1:1000").status; got != 401 {
			t.Fatalf("attempt %d from one address: %d, want 401", i+1, got)
		}
	}
	resp := attempt(u.email, "correct horse battery", "198.18.0.1:1001")
	if resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d Retry-After=%q, want 429 with Retry-After", resp.status, resp.header.Get("Retry-After"))
	}
	resp.problem(t)
	if got := attempt(u.email, "correct horse battery", "198.18.0.2:1000").status; got != 200 {
		t.Errorf("another address: %d, want 200", got)
	}
	h.clock.Advance(time.Minute)
	if got := attempt(u.email, "correct horse battery", "198.18.0.1:1002").status; got != 200 {
		t.Errorf("first address a minute later: %d, want 200", got)
	}

	// Per account: 5 failures in 15 minutes, from any addresses; then even
	// the right password waits.
	for i := range 5 {
		addr := "198.51.100." + string(rune('1'+i)) + ":1"
		if got := attempt(u.email, "wrong password", addr).status; got != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, got)
		}
	}
	resp = attempt(u.email, "correct horse battery", "203.0.113.9:1")
	if resp.status != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures: %d, want 429", resp.status)
	}
	if ra := resp.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want seconds", ra)
	}
	h.clock.Advance(15 * time.Minute)
	if got := attempt(u.email, "correct horse battery", "203.0.113.9:1").status; got != 200 {
		t.Errorf("after 15 minutes: %d, want 200", got)
	}
}

func testLoginSameAnswer(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("enum") + "@example.com")
	wrong := h.do(req{method: "POST", path: "/api/v1/auth/login", remoteAddr: "192.0.2.10:1",
		body: map[string]string{"email": u.email, "password": "not the password"}})
	unknown := h.do(req{method: "POST", path: "/api/v1/auth/login", remoteAddr: "192.0.2.11:1",
		body: map[string]string{"email": uniq("ghost") + "@example.com", "password": "not the password"}})
	pw, pu := wrong.problem(t), unknown.problem(t)
	pw.RequestID, pu.RequestID = "", ""
	if wrong.status != 401 || unknown.status != wrong.status || !reflect.DeepEqual(pw, pu) {
		t.Errorf("wrong password answered %d %+v, unknown email %d %+v: want the same 401",
			wrong.status, pw, unknown.status, pu)
	}
}
