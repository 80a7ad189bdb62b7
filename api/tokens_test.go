package api

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
)

func hashOf(secret string) []byte { return auth.HashToken(secret) }

// sign makes a token with any method and key, for forging.
func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func testBadTokens(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st)
	u := h.signUp(uniq("tokens") + "@example.com")
	now := h.clock.Now()
	claims := jwt.MapClaims{"sub": u.id, "email": u.email, "iss": "canopy",
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	kid := h.keys.SigningKID()
	pub, _ := h.keys.PublicKey(kid)

	parts := strings.Split(u.access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := strings.Replace(string(payload), u.id, "someone-else", 1)
	forgedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(tampered)) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
	noneToken := noneHeader + "." + parts[1] + "."

	elsewhere, _, err := auth.NewTokens(h.keys, "elsewhere", h.clock.Now).Issue(&tenancy.User{ID: u.id, Email: u.email})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"alg none":         noneToken,
		"HS256 with pub":   sign(t, jwt.SigningMethodHS256, []byte(pub), kid, claims),
		"unknown kid":      sign(t, jwt.SigningMethodEdDSA, otherKey(t), "nope", claims),
		"other key":        sign(t, jwt.SigningMethodEdDSA, otherKey(t), kid, claims),
		"tampered payload": forgedPayload,
		"garbage":          "not-a-jwt",
		"project token":    auth.ProjectTokenPrefix + "abc",
		"wrong issuer":     elsewhere,
	}
	for name, tok := range cases {
		resp := h.do(req{method: "GET", path: "/api/v1/users/me", token: tok})
		if resp.status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, resp.status)
			continue
		}
		resp.problem(t)
		if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: no WWW-Authenticate: Bearer", name)
		}
	}

	// No header, and the right token once expired.
	if got := h.do(req{method: "GET", path: "/api/v1/users/me"}).status; got != 401 {
		t.Errorf("no token: %d, want 401", got)
	}
	h.clock.Advance(auth.AccessTokenTTL + time.Minute)
	if got := h.do(req{method: "GET", path: "/api/v1/users/me", token: u.access}).status; got != 401 {
		t.Errorf("expired token: %d, want 401", got)
	}
	// None of this created anything.
	if ps, _, err := st.ListProjects(t.Context(), tenancy.ProjectFilter{MemberID: u.id}); err != nil || len(ps) != 0 {
		t.Errorf("projects after bad tokens: %d, %v", len(ps), err)
	}
}

func testProjectTokens(t *testing.T, st tenancy.Store) {
	h := newHarness(t, st, func(c *Config) { c.PromProxy = namespaceEcho() })
	owner := h.signUp(uniq("tok-owner") + "@example.com")
	id := h.createProject(owner, uniq("tok"))
	base := "/api/v1/projects/" + id + "/tokens"

	resp := h.do(req{method: "POST", path: base, token: owner.access, body: map[string]string{"name": "grafana"}})
	var made tokenJSON
	resp.json(t, &made)
	if resp.status != 201 || !strings.HasPrefix(made.Token, "cnp_") || resp.header.Get("Location") != made.Links.Self {
		t.Fatalf("create token: %d %+v Location=%q", resp.status, made, resp.header.Get("Location"))
	}
	stored, err := st.ProjectTokenByHash(t.Context(), auth.HashToken(made.Token))
	if err != nil || stored.ID != made.ID {
		t.Fatalf("token not stored under its SHA-256: %+v %v", stored, err)
	}

	// The secret is shown once: neither the list nor the token's page has it.
	for _, path := range []string{base, made.Links.Self} {
		resp = h.do(req{method: "GET", path: path, token: owner.access})
		if resp.status != 200 || strings.Contains(string(resp.body), made.Token) {
			t.Errorf("GET %s: %d, secret shown again: %v", path, resp.status, strings.Contains(string(resp.body), made.Token))
		}
	}

	// The token reads the project's metrics and nothing else.
	prom := "/api/v1/projects/" + id + "/prometheus/api/v1/query?query=up"
	if got := h.do(req{method: "GET", path: prom, token: made.Token}).status; got != 200 {
		t.Errorf("query with project token: %d, want 200", got)
	}
	for _, path := range []string{"/api/v1/projects/" + id, "/api/v1/projects", "/api/v1/users/me", base} {
		if got := h.do(req{method: "GET", path: path, token: made.Token}).status; got != 401 {
			t.Errorf("GET %s with a project token: %d, want 401", path, got)
		}
	}

	// Revoked, it stops working.
	if got := h.do(req{method: "DELETE", path: made.Links.Self, token: owner.access}).status; got != 204 {
		t.Fatalf("delete token: %d", got)
	}
	if got := h.do(req{method: "GET", path: prom, token: made.Token}).status; got != 401 {
		t.Errorf("query with revoked token: %d, want 401", got)
	}
	if got := h.do(req{method: "DELETE", path: made.Links.Self, token: owner.access}).status; got != 404 {
		t.Errorf("delete again: %d, want 404", got)
	}
}
