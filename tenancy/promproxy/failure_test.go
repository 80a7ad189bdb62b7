package promproxy_test

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"canopy.dev/canopy/internal/testenv"
	"canopy.dev/canopy/tenancy/promproxy"
)

// unreachable returns the URL of a loopback port that nothing listens on.
func unreachable(t *testing.T) *url.URL {
	u, err := url.Parse("http://" + testenv.FreeAddr(t))
	require.NoError(t, err)
	return u
}

func newProxy(t *testing.T, upstream *url.URL, opts promproxy.Options) http.Handler {
	t.Helper()
	p, err := promproxy.New(upstream, opts)
	require.NoError(t, err)
	return p
}

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

// serve runs one request through h as tenant canopy-a and returns the
// recorded answer.
func serve(h http.Handler, method, target, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	asTenant(tenant, h).ServeHTTP(rec, req)
	return rec
}

func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int) problem {
	t.Helper()
	require.Equal(t, status, rec.Code, "answer: %s", rec.Body)
	require.Equal(t, "application/problem+json", rec.Header().Get("Content-Type"))
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, status, p.Status)
	require.Equal(t, http.StatusText(status), p.Title)
	require.NotEmpty(t, p.Type)
	require.NotEmpty(t, p.Detail)
	return p
}

func TestPrometheusUnreachable(t *testing.T) {
	h := newProxy(t, unreachable(t), promproxy.Options{})
	for _, target := range []string{"/api/v1/query?query=up", "/api/v1/labels",
		"/api/v1/label/pod/values", "/api/v1/series?match[]=up"} {
		rec := serve(h, http.MethodGet, target, "", "")
		p := requireProblem(t, rec, http.StatusBadGateway)
		require.Contains(t, p.Detail, "Prometheus")
	}
}

func TestPrometheusTooSlow(t *testing.T) {
	// A listener that accepts connections and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conns := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})

	u, err := url.Parse("http://" + l.Addr().String())
	require.NoError(t, err)
	h := newProxy(t, u, promproxy.Options{Timeout: 200 * time.Millisecond})
	rec := serve(h, http.MethodGet, "/api/v1/query?query=up", "", "")
	requireProblem(t, rec, http.StatusGatewayTimeout)
}

func TestNoNamespaceIsNeverForwarded(t *testing.T) {
	// The upstream is unreachable: a forwarded request would answer 502.
	reg := prometheus.NewRegistry()
	h := newProxy(t, unreachable(t), promproxy.Options{Registerer: reg})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/query?query=up", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	requireProblem(t, rec, http.StatusInternalServerError)
	require.Equal(t, 1.0, counterValue(t, reg, "query", promproxy.OutcomeInternal))
}

func TestRefusedBeforeForwarding(t *testing.T) {
	// The upstream is unreachable: a forwarded request would answer 502.
	h := newProxy(t, unreachable(t), promproxy.Options{MaxBodyBytes: 64})
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name, method, target, contentType, body string
		status                                  int
	}{
		{"JSON body", http.MethodPost, "/api/v1/query", "application/json",
			`{"query":"up"}`, http.StatusUnsupportedMediaType},
		{"body too large", http.MethodPost, "/api/v1/query", form,
			"query=" + strings.Repeat("a", 100), http.StatusRequestEntityTooLarge},
		{"DELETE", http.MethodDelete, "/api/v1/series?match[]=up", "", "",
			http.StatusMethodNotAllowed},
		{"bad URL encoding", http.MethodGet, "/api/v1/query?query=%zz", "", "",
			http.StatusBadRequest},
		{"bad body encoding", http.MethodPost, "/api/v1/query", form, "query=%zz",
			http.StatusBadRequest},
		{"bad expression", http.MethodGet, "/api/v1/query?query=sum(", "", "",
			http.StatusBadRequest},
		{"no query", http.MethodGet, "/api/v1/query", "", "", http.StatusBadRequest},
		{"time twice", http.MethodGet, "/api/v1/query?query=up&time=1&time=2", "", "",
			http.StatusBadRequest},
		{"bad label name", http.MethodGet, "/api/v1/label/a-b/values", "", "",
			http.StatusNotFound},
		{"admin API", http.MethodPost, "/api/v1/admin/tsdb/delete_series?match[]=up", "", "",
			http.StatusNotFound},
		{"metadata", http.MethodGet, "/api/v1/metadata", "", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(h, tc.method, tc.target, tc.contentType, tc.body)
			require.Equal(t, tc.status, rec.Code, "answer: %s", rec.Body)
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var answer struct{ Status, ErrorType, Error string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &answer))
			require.Equal(t, "error", answer.Status)
			require.NotEmpty(t, answer.ErrorType)
			require.NotEmpty(t, answer.Error)
		})
	}
}

func TestNewRefusesBadUpstream(t *testing.T) {
	for _, raw := range []string{"", "prometheus:9090", "ftp://p:9090", "http://",
		"http://p:9090/?x=1", "http://p:9090/#f"} {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		_, err = promproxy.New(u, promproxy.Options{})
		require.ErrorIs(t, err, promproxy.ErrBadUpstream, "URL %q", raw)
	}
	_, err := promproxy.New(nil, promproxy.Options{})
	require.ErrorIs(t, err, promproxy.ErrBadUpstream)
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	u, _ := url.Parse("http://127.0.0.1:9090/prom")
	_, err := promproxy.New(u, promproxy.Options{Registerer: reg})
	require.NoError(t, err)
	_, err = promproxy.New(u, promproxy.Options{Registerer: reg})
	var already prometheus.AlreadyRegisteredError
	require.True(t, errors.As(err, &already), "second registration: %v", err)
}
