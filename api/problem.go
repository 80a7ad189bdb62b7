package api

import (
	"encoding/json"
	"errors"
	"github.com/go-chi/chi/v5"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"canopy.dev/canopy/api/docs"

	"canopy.dev/canopy/tenancy"
)

// Errors of the HTTP layer itself, beside tenancy's sentinels.
var (
	errBadRequest       = errors.New("bad request")
	errTooLarge         = errors.New("request body too large")
	errMediaType        = errors.New("unsupported media type")
	errRateLimited      = errors.New("too many requests")
	errUnavailable      = errors.New("service unavailable")
	errMethodNotAllowed = errors.New("method not allowed")
)

// problemKind is one row of the table from errors to HTTP answers.
type problemKind struct {
	err    error
	status int
	slug   string // anchor of the problem type on /docs
	title  string
	detail string // said when the error carries no detail of its own
}

// problemKinds is the one table from errors to statuses. The first row whose
// error matches wins; anything else is a 500.
var problemKinds = []problemKind{
	{errBadRequest, 400, "bad-request", "Bad request", "The request is malformed."},
	{tenancy.ErrUnauthorized, 401, "unauthorized", "Unauthorized",
		"Sign in and send the access token as Authorization: Bearer."},
	{tenancy.ErrForbidden, 403, "forbidden", "Forbidden", "You may not do this."},
	{tenancy.ErrNotFound, 404, "not-found", "Not found", "There is no such resource."},
	{errMethodNotAllowed, 405, "method-not-allowed", "Method not allowed",
		"This resource does not take this method."},
	{tenancy.ErrConflict, 409, "conflict", "Conflict", "The name is already taken."},
	{errTooLarge, 413, "too-large", "Request body too large",
		"The body is larger than 1 MiB."},
	{errMediaType, 415, "media-type", "Unsupported media type",
		"Send the body as application/json."},
	{tenancy.ErrInvalid, 422, "validation", "Invalid input", "Some fields are wrong."},
	{errRateLimited, 429, "rate-limited", "Too many requests", "Wait and try again."},
	{errUnavailable, 503, "unavailable", "Service unavailable",
		"A part Canopy depends on is not there."},
}

var internalKind = problemKind{nil, 500, "internal", "Internal server error",
	"Something failed on Canopy's side; the log has the cause under this request id."}

// problemTypes lists every problem kind for the docs page.
func problemTypes() []docs.ProblemType {
	out := make([]docs.ProblemType, 0, len(problemKinds)+1)
	for _, k := range append(problemKinds, internalKind) {
		out = append(out, docs.ProblemType{
			Slug: k.slug, Status: k.status, Title: k.title, Detail: k.detail,
		})
	}
	return out
}

// apiError is an error with what the client should read: a sentence, bad
// fields, when to retry. It unwraps to its kind and to its cause.
type apiError struct {
	kind       error
	detail     string
	fields     []tenancy.FieldError
	retryAfter time.Duration
	cause      error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.detail + ": " + e.cause.Error()
	}
	return e.detail
}

func (e *apiError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// fail returns an error of kind with a sentence for the client.
func fail(kind error, detail string) *apiError {
	return &apiError{kind: kind, detail: detail}
}

// failCause is fail keeping the underlying error for the log.
func failCause(kind error, detail string, cause error) *apiError {
	return &apiError{kind: kind, detail: detail, cause: cause}
}

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string               `json:"type"`
	Title     string               `json:"title"`
	Status    int                  `json:"status"`
	Detail    string               `json:"detail,omitempty"`
	Instance  string               `json:"instance,omitempty"`
	RequestID string               `json:"requestId,omitempty"`
	Errors    []tenancy.FieldError `json:"errors,omitempty"`
}

// kindOf finds err's row in problemKinds.
func kindOf(err error) problemKind {
	var ae *apiError
	if errors.As(err, &ae) {
		err = ae.kind
	}
	for _, k := range problemKinds {
		if errors.Is(err, k.err) {
			return k
		}
	}
	return internalKind
}

// problem answers err as application/problem+json and logs it: 5xx at
// error, 4xx at warn. It is the only place handlers' errors are logged.
func (s *server) problem(w http.ResponseWriter, r *http.Request, err error) {
	k := kindOf(err)
	p := Problem{
		Type: s.problems + k.slug, Title: k.title, Status: k.status, Detail: k.detail,
		Instance: r.URL.Path, RequestID: middleware.GetReqID(r.Context()),
	}
	// A 503 says which part is missing; other 5xx details stay in the log.
	var ae *apiError
	if errors.As(err, &ae) && (k.status < 500 || k.status == http.StatusServiceUnavailable) {
		p.Detail = ae.detail
		p.Errors = ae.fields
		if ae.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ae.retryAfter.Seconds())))
		}
	}
	var ve *tenancy.ValidationError
	if p.Errors == nil && errors.As(err, &ve) {
		p.Errors = ve.Fields
	}
	if k.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="canopy"`)
	}

	level := slog.LevelWarn
	if k.status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("request_id", p.RequestID), slog.Int("status", k.status),
		slog.String("path", r.URL.Path), slog.String("error", err.Error()))

	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(k.status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// created answers 201 with Location.
func created(w http.ResponseWriter, location string, v any) {
	w.Header().Set("Location", location)
	writeJSON(w, http.StatusCreated, v)
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.problem(w, r, fail(tenancy.ErrNotFound, "No route matches this path."))
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 asks for,
// listing the methods root serves on this path.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request, root chi.Routes) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete} {
		if root.Match(chi.NewRouteContext(), m, r.URL.Path) {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	s.problem(w, r, fail(errMethodNotAllowed, "This path does not take "+r.Method+"."))
}
