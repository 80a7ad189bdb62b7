package api

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"
)

func sqliteHarness(t *testing.T, mutate ...func(*Config)) *harness {
	return newHarness(t, openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "canopy.db")), mutate...)
}

// TestRoutesMatchSpec proves every served route is documented and every
// documented operation is served.
func TestRoutesMatchSpec(t *testing.T) {
	h := sqliteHarness(t)
	served := map[string]bool{}
	err := chi.Walk(h.h, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, k := range h.srv.spec.operationKeys() {
		documented[k] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not in openapi.yaml: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("in openapi.yaml but not served: %s", k)
		}
	}
	if len(served) < 35 {
		t.Errorf("only %d routes walked; the walk is broken", len(served))
	}
}

// TestSpecDescribesEveryField checks that every schema property and
// parameter has a description and an example.
func TestSpecDescribesEveryField(t *testing.T) {
	doc, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	seen := map[*openapi3.Schema]bool{}
	var walk func(where string, s *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		for name, p := range s.Properties {
			at := where + "." + name
			if p.Value.Description == "" && p.Ref == "" {
				missing = append(missing, at+": description")
			}
			if p.Value.Example == nil && p.Ref == "" {
				missing = append(missing, at+": example")
			}
			walk(at, p)
		}
		walk(where+"[]", s.Items)
		if s.AdditionalProperties.Schema != nil {
			walk(where+"{}", s.AdditionalProperties.Schema)
		}
	}
	for name, s := range doc.doc.Components.Schemas {
		walk(name, s)
	}
	for name, p := range doc.doc.Components.Parameters {
		if p.Value.Description == "" || (p.Value.Example == nil && p.Value.Schema.Value.Example == nil) {
			missing = append(missing, "parameter "+name)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("openapi.yaml: %s missing", m)
	}
}

func TestJWKSVerifiesAccessTokens(t *testing.T) {
	h := sqliteHarness(t)
	u := h.signUp(uniq("jwks") + "@example.com")
	resp := h.do(req{method: "GET", path: "/.well-known/jwks.json"})
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid, Alg, Use string } `json:"keys"`
	}
	resp.json(t, &set)
	if resp.status != 200 || len(set.Keys) == 0 {
		t.Fatalf("jwks: %d %s", resp.status, resp.body)
	}

	// Verify the access token with nothing but the published key.
	tok, err := jwt.Parse(u.access, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] && k.Kty == "OKP" && k.Crv == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k.X)
				return ed25519.PublicKey(x), err
			}
		}
		return nil, jwt.ErrTokenUnverifiable
	}, jwt.WithValidMethods([]string{"EdDSA"}))
	if err != nil || !tok.Valid {
		t.Fatalf("access token does not verify with the JWKS: %v", err)
	}
	claims := tok.Claims.(jwt.MapClaims)
	if claims["sub"] != u.id || claims["email"] != u.email || claims["name"] == "" {
		t.Errorf("claims %v: want sub, email and name of the user", claims)
	}
	exp, _ := claims.GetExpirationTime()
	iat, _ := claims.GetIssuedAt()
	if exp == nil || iat == nil || exp.Sub(iat.Time).Minutes() != 15 {
		t.Errorf("token lifetime %v–%v, want 15 minutes", iat, exp)
	}
}

func TestOperationsEndpoints(t *testing.T) {
	h := sqliteHarness(t)
	u := h.signUp(uniq("ops") + "@example.com")
	h.do(req{method: "GET", path: "/api/v1/projects", token: u.access})

	for _, c := range []struct{ path, contentType, contains string }{
		{"/healthz", "application/json", `"ok"`},
		{"/readyz", "application/json", `"ok"`},
		{"/openapi.yaml", "application/yaml", "openapi: 3.0"},
		{"/openapi.json", "application/json", `"openapi":"3.0`},
		{"/docs", "text/html", "<script>"},
		{"/metrics", "text/plain", `canopy_http_requests_total{code="200",method="GET",route="/api/v1/projects"} 1`},
	} {
		resp := h.do(req{method: "GET", path: c.path})
		if resp.status != 200 || !strings.HasPrefix(resp.header.Get("Content-Type"), c.contentType) ||
			!strings.Contains(string(resp.body), c.contains) {
			t.Errorf("GET %s: %d %q, want %s containing %q", c.path, resp.status,
				resp.header.Get("Content-Type"), c.contentType, c.contains)
		}
	}
	docs := h.do(req{method: "GET", path: "/docs"})
	csp := docs.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'sha256-") || strings.Contains(string(docs.body), "://") {
		t.Errorf("docs page: CSP %q; it must load nothing from elsewhere", csp)
	}
	if !strings.Contains(string(docs.body), `id="problem-validation"`) {
		t.Errorf("docs page lacks the problem type anchors")
	}

	// One access-log line per request, with the request id and route.
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" {
			lines = append(lines, m)
		}
	}
	if len(lines) < 8 {
		t.Fatalf("%d access-log lines for 8+ requests", len(lines))
	}
	for _, m := range lines {
		for _, k := range []string{"request_id", "method", "route", "status", "duration", "bytes"} {
			if _, ok := m[k]; !ok || m["request_id"] == "" {
				t.Errorf("access log %v lacks %s", m, k)
			}
		}
	}
}

func TestReadyzFailsWithoutStore(t *testing.T) {
	st := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "canopy.db"))
	h := newHarness(t, st)
	_ = st.Close()
	resp := h.do(req{method: "GET", path: "/readyz"})
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("readyz with a closed store: %d, want 503", resp.status)
	}
	resp.problem(t)
}

// TestDocsPageCSPMatchesInlineCode checks that the page's inline script and
// style are exactly the ones its Content-Security-Policy allows, so that a
// browser runs them (and nothing else).
func TestDocsPageCSPMatchesInlineCode(t *testing.T) {
	h := sqliteHarness(t)
	resp := h.do(req{method: "GET", path: "/docs"})
	page, csp := string(resp.body), resp.header.Get("Content-Security-Policy")
	for _, tag := range []string{"script", "style"} {
		open, end := strings.Index(page, "<"+tag+">"), strings.Index(page, "</"+tag+">")
		if open < 0 || end < open {
			t.Fatalf("no inline %s", tag)
		}
		sum := sha256.Sum256([]byte(page[open+len(tag)+2 : end]))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, want) {
			t.Errorf("CSP %q does not allow the inline %s (%s)", csp, tag, want)
		}
	}
}
