package promproxy

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/prometheus/common/model"
)

// endpoint is one Prometheus HTTP API endpoint the proxy serves.
type endpoint struct {
	name    string   // value of the endpoint label of the request counter
	query   bool     // takes a PromQL expression in the query parameter
	match   bool     // takes match[] series selectors
	needs   bool     // with match: at least one match[] is required
	params  []string // single-valued parameters forwarded as they are
	useGET  bool     // Prometheus serves it on GET only
	pathFmt string   // path below the upstream URL; %s is the label name
}

// Endpoints the proxy serves, by their last path segment.
//
// TODO(promproxy): /api/v1/query_exemplars could be served like query_range,
// which Grafana's exemplar toggle needs; /api/v1/metadata cannot be limited
// to a namespace at all and stays unserved.
var (
	epQuery = endpoint{
		name: "query", query: true, pathFmt: "api/v1/query",
		params: []string{"time", "timeout", "limit", "lookback_delta", "stats"},
	}
	epQueryRange = endpoint{
		name: "query_range", query: true, pathFmt: "api/v1/query_range",
		params: []string{"start", "end", "step", "timeout", "limit", "lookback_delta", "stats"},
	}
	epSeries = endpoint{
		name: "series", match: true, needs: true, pathFmt: "api/v1/series",
		params: []string{"start", "end", "limit"},
	}
	epLabels = endpoint{
		name: "labels", match: true, pathFmt: "api/v1/labels",
		params: []string{"start", "end", "limit"},
	}
	epLabelValues = endpoint{
		name: "label_values", match: true, useGET: true, pathFmt: "api/v1/label/%s/values",
		params: []string{"start", "end", "limit"},
	}
	allEndpoints = []endpoint{epQuery, epQueryRange, epSeries, epLabels, epLabelValues}
)

const (
	paramQuery = "query"
	paramMatch = "match[]"
)

// requestError is a request the proxy refuses before asking Prometheus.
type requestError struct {
	status int    // HTTP status
	kind   string // Prometheus errorType
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badData(format string, args ...any) *requestError {
	return &requestError{http.StatusBadRequest, "bad_data", fmt.Errorf(format, args...)}
}

// route finds the endpoint from the trailing segments of the escaped path, so
// that it works whether or not the mount prefix was stripped. For the label
// values endpoint it also returns the label name.
func route(escapedPath string) (endpoint, string, bool) {
	seg := strings.Split(strings.TrimSuffix(escapedPath, "/"), "/")
	tail := func(n int) []string {
		if len(seg) < n {
			return nil
		}
		return seg[len(seg)-n:]
	}

	if t := tail(3); t != nil && t[0] == "api" && t[1] == "v1" {
		switch t[2] {
		case "query":
			return epQuery, "", true
		case "query_range":
			return epQueryRange, "", true
		case "series":
			return epSeries, "", true
		case "labels":
			return epLabels, "", true
		}
	}
	t := tail(5)
	if t == nil || t[0] != "api" || t[1] != "v1" || t[2] != "label" || t[4] != "values" {
		return endpoint{}, "", false
	}
	name, err := url.PathUnescape(t[3])
	if err != nil || !model.LabelName(name).IsValidLegacy() {
		return endpoint{}, "", false
	}
	return epLabelValues, name, true
}

// readParams returns the parameters of r from its URL and, for POST, its
// form body. A parameter given in both places is refused, as is a body
// larger than maxBody or of another content type.
func readParams(w http.ResponseWriter, r *http.Request, maxBody int64) (url.Values, error) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badData("parse URL query: %w", err)
	}
	if r.Method != http.MethodPost {
		return params, nil
	}

	body, err := readForm(w, r, maxBody)
	if err != nil {
		return nil, err
	}
	for name, values := range body {
		if _, dup := params[name]; dup {
			return nil, badData("parameter %q is given both in the URL and in the body", name)
		}
		params[name] = values
	}
	return params, nil
}

// readForm reads and parses an application/x-www-form-urlencoded body.
func readForm(w http.ResponseWriter, r *http.Request, maxBody int64) (url.Values, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
		return nil, &requestError{http.StatusRequestEntityTooLarge, "bad_data",
			fmt.Errorf("request body is larger than %d bytes", maxErr.Limit)}
	}
	if err != nil {
		return nil, badData("read request body: %w", err)
	}
	if len(b) == 0 {
		return url.Values{}, nil
	}

	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, &requestError{http.StatusUnsupportedMediaType, "bad_data",
			errors.New("a POST body must be application/x-www-form-urlencoded")}
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, badData("parse form body: %w", err)
	}
	return form, nil
}

// rewrite returns the parameters to send to Prometheus for a request by the
// tenant of namespace ns: every expression and match[] limited to ns, the
// endpoint's other known parameters as given, and nothing else. It also
// returns the names of the parameters it dropped, sorted.
func rewrite(ep endpoint, ns string, in url.Values) (url.Values, []string, error) {
	out := url.Values{}
	for _, name := range ep.params {
		v, ok, err := single(in, name)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			out.Set(name, v)
		}
	}

	if ep.query {
		expr, _, err := single(in, paramQuery)
		if err != nil {
			return nil, nil, err
		}
		if expr, err = EnforceExpr(ns, expr); err != nil {
			return nil, nil, badData("invalid parameter %q: %w", paramQuery, err)
		}
		out.Set(paramQuery, expr)
	}

	if ep.match {
		matches, err := enforceMatches(ep, ns, in[paramMatch])
		if err != nil {
			return nil, nil, err
		}
		out[paramMatch] = matches
	}

	var dropped []string
	for name := range in {
		if _, kept := out[name]; !kept {
			dropped = append(dropped, name)
		}
	}
	slices.Sort(dropped)
	return out, dropped, nil
}

// enforceMatches limits each match[] selector to ns, or returns the
// namespace's own selector when there is none and the endpoint allows that.
func enforceMatches(ep endpoint, ns string, selectors []string) ([]string, error) {
	if len(selectors) == 0 {
		if ep.needs {
			return nil, badData("no %s parameter provided", paramMatch)
		}
		return []string{NamespaceSelector(ns)}, nil
	}
	out := make([]string, 0, len(selectors))
	for _, s := range selectors {
		enforced, err := EnforceSelector(ns, s)
		if err != nil {
			return nil, badData("invalid parameter %q: %w", paramMatch, err)
		}
		out = append(out, enforced)
	}
	return out, nil
}

// single returns the one value of a single-valued parameter; giving it more
// than once is refused, since Prometheus would silently take the first.
func single(in url.Values, name string) (string, bool, error) {
	switch vs := in[name]; len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	default:
		return "", false, badData("parameter %q is given %d times", name, len(vs))
	}
}
