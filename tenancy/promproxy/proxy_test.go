package promproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"canopy.dev/canopy/internal/testenv"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/promproxy"
)

const (
	fixtureName = "kubelet-1.22-minikube-containerd-cgroupv2.metrics-cadvisor.txt"
	tenant      = "canopy-a"
	mountPrefix = "/api/v1/projects/p1/prometheus"
)

// kubeletRenames gives each stand-in kubelet its namespace names. They are
// uneven on purpose, so that the three tenants' sums all differ:
// canopy-a holds kube-system once, canopy-b kube-system once and scraper
// twice, canopy-c each once.
var kubeletRenames = []map[string]string{
	{"kube-system": "canopy-a", "scraper": "canopy-b"},
	{"kube-system": "canopy-b", "scraper": "canopy-c"},
	{"kube-system": "canopy-c", "scraper": "canopy-b"},
}

var namespaceLabel = regexp.MustCompile(`([{,])namespace="([^"]*)"`)

// renameNamespaces rewrites the namespace label values of a metrics page.
func renameNamespaces(page []byte, renames map[string]string) []byte {
	return namespaceLabel.ReplaceAllFunc(page, func(m []byte) []byte {
		sub := namespaceLabel.FindSubmatch(m)
		if to, ok := renames[string(sub[2])]; ok {
			return fmt.Appendf(nil, `%snamespace=%q`, sub[1], to)
		}
		return m
	})
}

// tap records what the proxy sends to Prometheus, then passes it on.
type tap struct {
	mu       sync.Mutex
	requests int
	header   http.Header
	form     url.Values
}

func (tp *tap) handler(prom *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(prom)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(r.URL.RawQuery)
		if bodyForm, err := url.ParseQuery(string(body)); err == nil {
			for k, v := range bodyForm {
				form[k] = append(form[k], v...)
			}
		}

		tp.mu.Lock()
		tp.requests++
		tp.header, tp.form = r.Header.Clone(), form
		tp.mu.Unlock()
		rp.ServeHTTP(w, r)
	})
}

func (tp *tap) last() (int, http.Header, url.Values) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.requests, tp.header, tp.form
}

// env is a real Prometheus holding three tenants' series, and the proxy in
// front of it serving tenant canopy-a, the way the API mounts it.
type env struct {
	prom     *testenv.Prometheus
	tap      *tap
	proxyURL string // up to and including mountPrefix
	at       int64  // evaluation time of every query, in Unix seconds
	registry *prometheus.Registry
}

func startEnv(t *testing.T) *env {
	t.Helper()
	page := testenv.Fixture(t, fixtureName)
	var targets []string
	for _, renames := range kubeletRenames {
		body := renameNamespaces(page, renames)
		serveBody := func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write(body)
		}
		kubelet := httptest.NewServer(http.HandlerFunc(serveBody))
		t.Cleanup(kubelet.Close)
		targets = append(targets, strings.TrimPrefix(kubelet.URL, "http://"))
	}

	// The fixture's samples carry 2023 timestamps: honor_timestamps: false
	// stamps them with the scrape time, so the TSDB keeps them.
	config := fmt.Sprintf(`
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kubelet-cadvisor
    honor_timestamps: false
    metrics_path: /metrics/cadvisor
    static_configs:
      - targets: ['%s']
`, strings.Join(targets, "', '"))
	prom := testenv.StartPrometheus(t, config, nil)
	waitIngested(t, prom, page)

	e := &env{prom: prom, tap: &tap{}, registry: prometheus.NewRegistry()}
	promURL, err := url.Parse(prom.URL)
	require.NoError(t, err)
	tapSrv := httptest.NewServer(e.tap.handler(promURL))
	t.Cleanup(tapSrv.Close)

	tapURL, err := url.Parse(tapSrv.URL)
	require.NoError(t, err)
	proxy, err := promproxy.New(tapURL, promproxy.Options{Registerer: e.registry})
	require.NoError(t, err)
	srv := httptest.NewServer(asTenant(tenant, proxy))
	t.Cleanup(srv.Close)
	e.proxyURL = srv.URL + mountPrefix

	// Data are in from now on; the 2s offsets reach back to now+1. Wait until
	// every scrape stamped before the evaluation time has been stored.
	e.at = time.Now().Unix() + 3
	time.Sleep(time.Until(time.Unix(e.at+2, 0)))
	return e
}

// asTenant does what the API's auth layer does: it puts the namespace of
// the authenticated caller's project in the request context.
func asTenant(ns string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(tenancy.NewContextWithNamespace(r.Context(), ns)))
	})
}

// waitIngested waits until Prometheus holds every kubelet's CPU series, as
// many per tenant namespace as the renamed fixture has.
func waitIngested(t *testing.T, prom *testenv.Prometheus, page []byte) {
	t.Helper()
	want := map[string]float64{}
	for _, renames := range kubeletRenames {
		for from, to := range renames {
			want[to] += countSeries(page, "container_cpu_usage_seconds_total", from)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got map[string]float64
	for ctx.Err() == nil {
		got = map[string]float64{}
		samples, err := prom.Query(ctx,
			`count by (namespace) (container_cpu_usage_seconds_total{namespace=~"canopy-.+"})`)
		if err == nil {
			for _, s := range samples {
				got[s.Metric["namespace"]] = s.Value
			}
			if fmt.Sprint(got) == fmt.Sprint(want) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("Prometheus holds CPU series per namespace %v, want %v", got, want)
}

// countSeries counts the lines of metric in namespace ns in a metrics page.
func countSeries(page []byte, metric, ns string) float64 {
	n := 0
	for line := range strings.Lines(string(page)) {
		labels, ok := strings.CutPrefix(line, metric+"{")
		if ok && strings.Contains(","+labels, `,namespace="`+ns+`"`) {
			n++
		}
	}
	return float64(n)
}

// attempt is one request by tenant canopy-a that tries to read more.
type attempt struct {
	name     string
	method   string      // GET unless set
	path     string      // below the mount prefix
	query    url.Values  // in the URL
	form     url.Values  // in a POST body
	header   http.Header // extra request headers
	refused  bool        // must get a 4xx and never reach Prometheus
	want     url.Values  // else: the same endpoint asked directly, limited by hand
	nonEmpty bool        // the answer must hold data
}

const (
	mem = "container_memory_working_set_bytes"
	cpu = "container_cpu_usage_seconds_total"
)

func (e *env) instant(expr string) url.Values {
	return url.Values{"query": {expr}, "time": {strconv.FormatInt(e.at, 10)}}
}

func (e *env) ranged(expr string) url.Values {
	return url.Values{"query": {expr}, "start": {strconv.FormatInt(e.at-10, 10)},
		"end": {strconv.FormatInt(e.at, 10)}, "step": {"1"}}
}

func (e *env) matching(selectors ...string) url.Values {
	v := url.Values{"start": {strconv.FormatInt(e.at-30, 10)},
		"end": {strconv.FormatInt(e.at, 10)}}
	if len(selectors) > 0 {
		v["match[]"] = selectors
	}
	return v
}

func with(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	out.Add(key, value)
	return out
}

// escapeAttempts lists what tenant canopy-a tries. The limited query it
// should amount to is written by hand for each.
func (e *env) escapeAttempts() []attempt {
	at := strconv.FormatInt(e.at, 10)
	own := `namespace="canopy-a"`
	return []attempt{
		{name: "bare metric", path: "/api/v1/query", query: e.instant(mem),
			want: e.instant(mem + `{` + own + `}`), nonEmpty: true},
		{name: "other namespace", path: "/api/v1/query",
			query: e.instant(mem + `{namespace="canopy-b"}`), refused: true},
		{name: "regex alternation", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=~"canopy-a|canopy-b"}`), refused: true},
		{name: "regex matching all", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=~".*"}`), refused: true},
		{name: "regex prefix", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=~"canopy-.+"}`), refused: true},
		{name: "not equal", path: "/api/v1/query",
			query: e.instant(mem + `{namespace!="canopy-a"}`), refused: true},
		{name: "negative regex", path: "/api/v1/query",
			query: e.instant(mem + `{namespace!~"canopy-a"}`), refused: true},
		{name: "series without namespace", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=""}`), refused: true},
		{name: "case-insensitive regex", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=~"(?i)CANOPY-B"}`), refused: true},
		{name: "two namespace matchers", path: "/api/v1/query",
			query: e.instant(mem + `{namespace="canopy-a",namespace="canopy-b"}`), refused: true},
		{name: "quoted namespace label", path: "/api/v1/query",
			query: e.instant(`{"namespace"="canopy-b", __name__="` + mem + `"}`), refused: true},
		{name: "own namespace as regex", path: "/api/v1/query",
			query: e.instant(mem + `{namespace=~"canopy-a"}`),
			want:  e.instant(mem + `{` + own + `}`), nonEmpty: true},
		{name: "every metric by namespace", path: "/api/v1/query",
			query:    e.instant(`count by (namespace) ({__name__=~".+"})`),
			want:     e.instant(`count by (namespace) ({__name__=~".+",` + own + `})`),
			nonEmpty: true},
		{name: "every series by pod", path: "/api/v1/query",
			query: e.instant(`count by (pod) ({__name__!=""})`),
			want:  e.instant(`count by (pod) ({__name__!="",` + own + `})`), nonEmpty: true},
		{name: "name regex, topk", path: "/api/v1/query",
			query:    e.instant(`topk(5, {__name__=~"container_memory.*"})`),
			want:     e.instant(`topk(5, {__name__=~"container_memory.*",` + own + `})`),
			nonEmpty: true},
		{name: "label_replace relabelling b as a", path: "/api/v1/query",
			query: e.instant(`sum by (namespace) (label_replace(` + mem +
				`, "namespace", "canopy-a", "namespace", "canopy-b"))`),
			want: e.instant(`sum by (namespace) (label_replace(` + mem + `{` + own +
				`}, "namespace", "canopy-a", "namespace", "canopy-b"))`), nonEmpty: true},
		{name: "label_replace of another namespace", path: "/api/v1/query",
			query: e.instant(`label_replace(` + mem +
				`{namespace="canopy-b"}, "namespace", "canopy-a", "", "")`), refused: true},
		{name: "or on() another namespace", path: "/api/v1/query",
			query: e.instant(mem + ` or on() ` + cpu + `{namespace="canopy-b"}`), refused: true},
		{name: "or on() vector", path: "/api/v1/query",
			query: e.instant(`sum(` + mem + `) or on() vector(0)`),
			want:  e.instant(`sum(` + mem + `{` + own + `}) or on() vector(0)`), nonEmpty: true},
		{name: "or on() target health", path: "/api/v1/query",
			query:    e.instant(`sum(` + mem + `) or on() up`),
			want:     e.instant(`sum(` + mem + `{` + own + `}) or on() up{` + own + `}`),
			nonEmpty: true},
		{name: "target health", path: "/api/v1/query", query: e.instant(`up`),
			want: e.instant(`up{` + own + `}`)},
		{name: "subquery", path: "/api/v1/query",
			query: e.instant(`max_over_time(sum by (namespace) (` + mem + `)[20s:1s])`),
			want: e.instant(`max_over_time(sum by (namespace) (` + mem + `{` + own +
				`})[20s:1s])`), nonEmpty: true},
		{name: "subquery of another namespace", path: "/api/v1/query",
			query:   e.instant(`max_over_time(` + mem + `{namespace="canopy-c"}[20s:1s])`),
			refused: true},
		{name: "absent of another namespace", path: "/api/v1/query",
			query: e.instant(`absent(` + mem + `{namespace="canopy-b"})`), refused: true},
		{name: "absent of a missing metric", path: "/api/v1/query",
			query: e.instant(`absent(nonexistent_metric)`),
			want:  e.instant(`absent(nonexistent_metric{` + own + `})`), nonEmpty: true},
		{name: "offset", path: "/api/v1/query",
			query:    e.instant(`sum by (namespace) (` + mem + ` offset 2s)`),
			want:     e.instant(`sum by (namespace) (` + mem + `{` + own + `} offset 2s)`),
			nonEmpty: true},
		{name: "at modifier", path: "/api/v1/query",
			query:    e.instant(`sum by (namespace) (` + mem + ` @ ` + at + `)`),
			want:     e.instant(`sum by (namespace) (` + mem + `{` + own + `} @ ` + at + `)`),
			nonEmpty: true},
		{name: "at modifier on another namespace", path: "/api/v1/query",
			query: e.instant(mem + `{namespace="canopy-b"} @ ` + at), refused: true},
		{name: "rate in aggregation", path: "/api/v1/query",
			query:    e.instant(`sum by (namespace) (rate(` + cpu + `[10s]))`),
			want:     e.instant(`sum by (namespace) (rate(` + cpu + `{` + own + `}[10s]))`),
			nonEmpty: true},
		{name: "binary operation on pods", path: "/api/v1/query",
			query: e.instant(`sum by (pod) (` + mem + `) / on(pod) sum by (pod) ` +
				`(container_memory_usage_bytes)`),
			want: e.instant(`sum by (pod) (` + mem + `{` + own + `}) / on(pod) sum by (pod) ` +
				`(container_memory_usage_bytes{` + own + `})`), nonEmpty: true},
		{name: "namespace parameter in the URL", path: "/api/v1/query",
			query: with(e.instant(`sum(`+mem+`)`), "namespace", "canopy-b"),
			want:  e.instant(`sum(` + mem + `{` + own + `})`), nonEmpty: true},
		{name: "namespace field in the body", method: http.MethodPost, path: "/api/v1/query",
			query: e.instant(`sum(` + mem + `)`), form: url.Values{"namespace": {"canopy-b"}},
			want: e.instant(`sum(` + mem + `{` + own + `})`), nonEmpty: true},
		{name: "query in the URL and the body", method: http.MethodPost, path: "/api/v1/query",
			query: e.instant(`sum(` + mem + `)`),
			form:  url.Values{"query": {`sum(` + mem + `{namespace="canopy-b"})`}}, refused: true},
		{name: "query given twice", path: "/api/v1/query",
			query:   with(e.instant(`sum(`+mem+`)`), "query", mem+`{namespace="canopy-b"}`),
			refused: true},
		{name: "POST form", method: http.MethodPost, path: "/api/v1/query",
			form: e.instant(`sum by (namespace) (` + mem + `)`),
			want: e.instant(`sum by (namespace) (` + mem + `{` + own + `})`), nonEmpty: true},
		{name: "tenant and credential headers", path: "/api/v1/query",
			query: e.instant(`sum by (namespace) (` + mem + `)`),
			header: http.Header{"X-Scope-Orgid": {"canopy-b"}, "X-Namespace": {"canopy-b"},
				"Authorization": {"Bearer secret"}, "Cookie": {"grafana_session=x"},
				"X-Grafana-Org-Id": {"2"}, "X-Forwarded-For": {"10.0.0.1"}},
			want: e.instant(`sum by (namespace) (` + mem + `{` + own + `})`), nonEmpty: true},
		{name: "query_range", path: "/api/v1/query_range",
			query: e.ranged(`sum by (namespace) (` + mem + `)`),
			want:  e.ranged(`sum by (namespace) (` + mem + `{` + own + `})`), nonEmpty: true},
		{name: "query_range POST", method: http.MethodPost, path: "/api/v1/query_range",
			form:     e.ranged(`count by (namespace) ({__name__=~"container_.*"})`),
			want:     e.ranged(`count by (namespace) ({__name__=~"container_.*",` + own + `})`),
			nonEmpty: true},
		{name: "query_range of every namespace", path: "/api/v1/query_range",
			query: e.ranged(`{namespace=~"canopy-.*"}`), refused: true},
		{name: "series", path: "/api/v1/series",
			query:    e.matching(`{__name__=~"` + mem + `|` + cpu + `"}`),
			want:     e.matching(`{__name__=~"` + mem + `|` + cpu + `",` + own + `}`),
			nonEmpty: true},
		{name: "series POST", method: http.MethodPost, path: "/api/v1/series",
			form: e.matching(mem), want: e.matching(mem + `{` + own + `}`), nonEmpty: true},
		{name: "series of another namespace", path: "/api/v1/series",
			query: e.matching(mem + `{namespace="canopy-b"}`), refused: true},
		{name: "series, one selector foreign", path: "/api/v1/series",
			query: e.matching(mem, cpu+`{namespace=~".+"}`), refused: true},
		{name: "series without match[]", path: "/api/v1/series", query: e.matching(),
			refused: true},
		{name: "match[] in the URL and the body", method: http.MethodPost, path: "/api/v1/series",
			query: e.matching(mem), form: url.Values{"match[]": {cpu}}, refused: true},
		{name: "label names", path: "/api/v1/labels", query: e.matching(),
			want: e.matching(`{` + own + `}`), nonEmpty: true},
		{name: "namespace values", path: "/api/v1/label/namespace/values", query: e.matching(),
			want: e.matching(`{` + own + `}`), nonEmpty: true},
		{name: "namespace values POST", method: http.MethodPost,
			path: "/api/v1/label/namespace/values", form: e.matching(`{__name__=~".+"}`),
			want: e.matching(`{__name__=~".+",` + own + `}`), nonEmpty: true},
		{name: "namespace values of every namespace", path: "/api/v1/label/namespace/values",
			query: e.matching(`{namespace=~".+"}`), refused: true},
		{name: "pod values", path: "/api/v1/label/pod/values", query: e.matching(mem),
			want: e.matching(mem + `{` + own + `}`), nonEmpty: true},
		{name: "metric names", path: "/api/v1/label/__name__/values", query: e.matching(),
			want: e.matching(`{` + own + `}`), nonEmpty: true},
		{name: "escaped path", path: "/api/v1/label/namespace%2F..%2F..%2Fquery/values",
			query: e.instant(mem), refused: true},
		{name: "other API endpoint", path: "/api/v1/status/config", refused: true},
	}
}

func TestAgainstPrometheus(t *testing.T) {
	e := startEnv(t)

	t.Run("escape attempts", func(t *testing.T) {
		attempts := e.escapeAttempts()
		require.GreaterOrEqual(t, len(attempts), 30)
		for _, a := range attempts {
			t.Run(a.name, func(t *testing.T) { e.check(t, a) })
		}
	})
	t.Run("Prometheus errors are relayed", func(t *testing.T) {
		// Many-to-many matching parses but fails when Prometheus evaluates it.
		expr := mem + ` + on(namespace) ` + mem
		status, body := e.send(t, attempt{path: "/api/v1/query", query: e.instant(expr)})
		direct, directBody := get(t, e.prom.URL+"/api/v1/query",
			e.instant(mem+`{namespace="canopy-a"} + on(namespace) `+mem+`{namespace="canopy-a"}`))
		require.Equal(t, http.StatusUnprocessableEntity, direct)
		require.Equal(t, direct, status)
		require.JSONEq(t, string(directBody), string(body))
	})
	t.Run("a wrong Prometheus URL answers 502", func(t *testing.T) {
		// Prometheus answers 404 in plain text below an unknown prefix.
		u, err := url.Parse(e.prom.URL + "/not-prometheus")
		require.NoError(t, err)
		h := newProxy(t, u, promproxy.Options{})
		rec := serve(h, http.MethodGet, "/api/v1/query?query=up", "", "")
		p := requireProblem(t, rec, http.StatusBadGateway)
		require.Contains(t, p.Detail, "404")
	})
	t.Run("requests are counted", func(t *testing.T) {
		proxied := counterValue(t, e.registry, "query", promproxy.OutcomeProxied)
		refused := counterValue(t, e.registry, "query", promproxy.OutcomeRefused)
		e.send(t, attempt{path: "/api/v1/query", query: e.instant(`up`)})
		e.send(t, attempt{path: "/api/v1/query", query: e.instant(`up{namespace="x"}`)})
		require.Equal(t, proxied+1, counterValue(t, e.registry, "query", promproxy.OutcomeProxied))
		require.Equal(t, refused+1, counterValue(t, e.registry, "query", promproxy.OutcomeRefused))
	})
}

// check sends a and checks that it is refused before reaching Prometheus,
// or that its answer is that of the hand-limited request and holds no other
// namespace.
func (e *env) check(t *testing.T, a attempt) {
	before, _, _ := e.tap.last()
	status, body := e.send(t, a)
	after, header, form := e.tap.last()
	var answer struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &answer), "answer: %s", body)

	if a.refused {
		require.True(t, status >= 400 && status < 500, "status %d, answer %s", status, body)
		require.Equal(t, "error", answer.Status)
		require.NotEmpty(t, answer.Error)
		require.Equal(t, before, after, "a refused request reached Prometheus")
		return
	}
	require.Equal(t, http.StatusOK, status, "answer: %s", body)
	require.Equal(t, before+1, after)
	checkForwarded(t, header, form)
	checkOwnNamespace(t, a.path, answer.Data)

	_, directBody := get(t, e.prom.URL+a.path, a.want)
	var direct struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(directBody, &direct))
	require.Equal(t, "success", direct.Status, "direct answer: %s", directBody)
	got, want := normalize(t, answer.Data), normalize(t, direct.Data)
	require.Equal(t, want, got)
	if a.nonEmpty {
		require.NotEmpty(t, results(got), "answer: %s", body)
	}
}

func (e *env) send(t *testing.T, a attempt) (int, []byte) {
	t.Helper()
	method, target := a.method, e.proxyURL+a.path
	if method == "" {
		method = http.MethodGet
	}
	if len(a.query) > 0 {
		target += "?" + a.query.Encode()
	}
	var body io.Reader
	if a.form != nil {
		body = strings.NewReader(a.form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	require.NoError(t, err)
	if a.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range a.header {
		req.Header[k] = vs
	}
	return do(t, req)
}

func get(t *testing.T, target string, params url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target+"?"+params.Encode(), nil)
	require.NoError(t, err)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// checkForwarded checks what reached Prometheus: no client header, and
// every expression and selector limited to the tenant's namespace.
func checkForwarded(t *testing.T, header http.Header, form url.Values) {
	t.Helper()
	allowed := []string{"Accept", "Accept-Encoding", "Content-Length", "Content-Type",
		"User-Agent"}
	for name := range header {
		require.Contains(t, allowed, name, "header %s reached Prometheus", name)
	}
	require.NotContains(t, form, "namespace")

	p := parser.NewParser(parser.Options{})
	for _, q := range form["query"] {
		ast, err := p.ParseExpr(q)
		require.NoError(t, err)
		parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				requireOnlyTenant(t, vs.String(), vs.LabelMatchers)
			}
			return nil
		})
	}
	for _, m := range form["match[]"] {
		ms, err := p.ParseMetricSelector(m)
		require.NoError(t, err)
		requireOnlyTenant(t, m, ms)
	}
}

func requireOnlyTenant(t *testing.T, sel string, ms []*labels.Matcher) {
	t.Helper()
	var ns []string
	for _, m := range ms {
		if m.Name == "namespace" {
			ns = append(ns, m.String())
		}
	}
	require.Equal(t, []string{`namespace="canopy-a"`}, ns, "selector %s", sel)
}

// checkOwnNamespace checks that every namespace in an answer is the tenant's.
func checkOwnNamespace(t *testing.T, path string, data json.RawMessage) {
	t.Helper()
	switch {
	case strings.HasSuffix(path, "/query"), strings.HasSuffix(path, "/query_range"):
		var d struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal(data, &d))
		for _, r := range d.Result {
			if ns, ok := r.Metric["namespace"]; ok {
				require.Equal(t, tenant, ns, "series %v", r.Metric)
			}
		}
	case strings.HasSuffix(path, "/series"):
		var d []map[string]string
		require.NoError(t, json.Unmarshal(data, &d))
		for _, s := range d {
			require.Equal(t, tenant, s["namespace"], "series %v", s)
		}
	case strings.HasSuffix(path, "/label/namespace/values"):
		var d []string
		require.NoError(t, json.Unmarshal(data, &d))
		require.Equal(t, []string{tenant}, d)
	}
}

// normalize decodes an answer's data with its results in a fixed order.
func normalize(t *testing.T, data json.RawMessage) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(data, &v))
	list := results(v)
	slices.SortFunc(list, func(a, b any) int {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		return bytes.Compare(ja, jb)
	})
	return v
}

// results returns the result list of a query answer, or the list that a
// series or label answer is.
func results(v any) []any {
	switch d := v.(type) {
	case map[string]any:
		list, _ := d["result"].([]any)
		return list
	case []any:
		return d
	}
	return nil
}

func counterValue(t *testing.T, reg *prometheus.Registry, endpoint, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "canopy_promproxy_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
