package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/go-chi/chi/v5"

	"canopy.dev/canopy/tenancy"
)

// openapiYAML is the API's contract; handlers follow it and requests are
// checked against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// spec is the loaded document and its operations by "METHOD /path".
type spec struct {
	doc  *openapi3.T
	json []byte
	ops  map[string]*routers.Route
	opts openapi3filter.Options
}

// loadSpec parses and validates the embedded document.
func loadSpec() (*spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode openapi.json: %w", err)
	}
	sp := &spec{doc: doc, json: js, ops: map[string]*routers.Route{}}
	sp.opts = openapi3filter.Options{
		MultiError:          true,
		SkipSettingDefaults: true,
		// Authentication is the API's own middleware, run before this one.
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			sp.ops[method+" "+path] = &routers.Route{
				Spec: doc, Path: path, PathItem: item, Method: method, Operation: op,
			}
		}
	}
	return sp, nil
}

// operationKeys lists "METHOD /path" of every operation, sorted.
func (sp *spec) operationKeys() []string {
	keys := make([]string, 0, len(sp.ops))
	for k := range sp.ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validate checks the request against its operation in the document: media
// type (415), size (413), JSON syntax (400), parameters (400) and body
// schema (422). It runs after routing, so chi's route pattern names the
// operation.
func (s *server) validate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.RouteContext(r.Context())
		route := s.spec.ops[r.Method+" "+rctx.RoutePattern()]
		if route == nil {
			// The route/spec parity test keeps this from happening.
			s.problem(w, r, fmt.Errorf("route %s %s is not in openapi.yaml",
				r.Method, rctx.RoutePattern()))
			return
		}
		if err := s.spec.check(r, route, rctx); err != nil {
			s.problem(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check validates r and leaves its body readable again.
func (sp *spec) check(r *http.Request, route *routers.Route, rctx *chi.Context) error {
	if rb := route.Operation.RequestBody; rb != nil && rb.Value != nil {
		body, err := readBody(r, rb.Value)
		if err != nil {
			return err
		}
		defer func() { r.Body = io.NopCloser(bytes.NewReader(body)) }()
	}
	params := make(map[string]string, len(rctx.URLParams.Keys))
	for i, k := range rctx.URLParams.Keys {
		params[k] = rctx.URLParams.Values[i]
	}
	in := &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route, Options: &sp.opts,
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return specError(err)
	}
	return nil
}

// readBody checks the media type and reads the whole body, bounded.
func readBody(r *http.Request, rb *openapi3.RequestBody) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || rb.Content.Get(mt) == nil {
		return nil, fail(errMediaType, "Send the body as one of: "+
			strings.Join(mediaTypes(rb), ", ")+".")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, failCause(errTooLarge, "The body is larger than 1 MiB.", err)
		}
		return nil, failCause(errBadRequest, "The body could not be read.", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 && rb.Required {
		return nil, fail(errBadRequest, "The body is empty; send a JSON object.")
	}
	if jsonMediaTypes[mt] && len(body) > 0 && !json.Valid(body) {
		var v any
		return nil, decodeError(json.Unmarshal(body, &v))
	}
	return body, nil
}

func mediaTypes(rb *openapi3.RequestBody) []string {
	var out []string
	for mt := range rb.Content {
		out = append(out, mt)
	}
	sort.Strings(out)
	return out
}

// specError turns kin-openapi's findings into one problem: 404 if a path
// parameter cannot be an id, 400 if another parameter is wrong, else 422
// with a field per schema violation.
func specError(err error) error {
	var fields []tenancy.FieldError
	badParam, badPath := false, false
	for _, e := range flatten(err) {
		var re *openapi3filter.RequestError
		if !errors.As(e, &re) {
			fields = append(fields, field("body", e.Error()))
			continue
		}
		if re.Parameter != nil {
			badParam = true
			badPath = badPath || re.Parameter.In == openapi3.ParameterInPath
			fields = append(fields, field(re.Parameter.Name, reason(re)))
			continue
		}
		fields = append(fields, bodyFields(re)...)
	}
	if badPath {
		// An id that cannot exist names nothing.
		return fail(tenancy.ErrNotFound, "There is no such resource.")
	}
	if badParam {
		const detail = "Some parameters are wrong; see errors."
		return &apiError{kind: errBadRequest, detail: detail, fields: fields}
	}
	return invalid(fields...)
}

// bodyFields lists the schema violations inside a body error.
func bodyFields(re *openapi3filter.RequestError) []tenancy.FieldError {
	var out []tenancy.FieldError
	for _, e := range flatten(re.Err) {
		var se *openapi3.SchemaError
		if !errors.As(e, &se) {
			msg := re.Reason
			if msg == "" && e != nil {
				msg = e.Error()
			}
			out = append(out, field("body", msg))
			continue
		}
		out = append(out, field(schemaField(se), se.Reason))
	}
	if len(out) == 0 {
		out = append(out, field("body", reason(re)))
	}
	return out
}

// schemaField names the field a schema error is about: its JSON path
// (which names the missing property for "required").
func schemaField(se *openapi3.SchemaError) string {
	path := se.JSONPointer()
	if len(path) == 0 {
		return "body"
	}
	return strings.Join(path, ".")
}

func reason(re *openapi3filter.RequestError) string {
	if re.Err != nil {
		var se *openapi3.SchemaError
		if errors.As(re.Err, &se) {
			return se.Reason
		}
		return re.Err.Error()
	}
	return re.Reason
}

// flatten expands openapi3.MultiError trees into their leaves.
func flatten(err error) []error {
	if me, ok := err.(openapi3.MultiError); ok {
		var out []error
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
