package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"canopy.dev/canopy/tenancy"
)

// limitBody caps every request body at MaxBodyBytes.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// jsonMediaTypes are the body types the JSON operations take.
var jsonMediaTypes = map[string]bool{
	"application/json":             true,
	"application/merge-patch+json": true,
}

// decodeJSON reads one JSON object from r into dst, refusing other media
// types (415), bodies over the limit (413), malformed JSON (400), and
// unknown fields or wrong types (422, naming the field).
func decodeJSON(r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !jsonMediaTypes[mt] {
		return fail(errMediaType, "Send the body as application/json.")
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail(errBadRequest, "The body holds more than one JSON value.")
	}
	return nil
}

// decodeError turns an encoding/json error into a client answer.
func decodeError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return failCause(errTooLarge, "The body is larger than 1 MiB.", err)
	case errors.Is(err, io.EOF):
		return fail(errBadRequest, "The body is empty; send a JSON object.")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fail(errBadRequest, "The body ends in the middle of a JSON value.")
	case errors.As(err, &syntax):
		return fail(errBadRequest, fmt.Sprintf("Malformed JSON at byte %d.", syntax.Offset))
	case errors.As(err, &typ):
		name := typ.Field
		if name == "" {
			name = "body"
		}
		return invalid(field(name, "must be "+jsonKind(typ.Type.Kind().String())))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid(field(strings.Trim(name, `"`), "is not a known field"))
	}
	return failCause(errBadRequest, "The body is not a JSON object of the expected shape.", err)
}

// jsonKind names a Go kind as JSON does.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "ptr":
		return "a value of another type"
	}
	return "a number"
}

// field names one bad field.
func field(name, message string) tenancy.FieldError {
	return tenancy.FieldError{Field: name, Message: message}
}

// invalid is a 422 listing bad fields.
func invalid(fields ...tenancy.FieldError) error {
	detail := "Some fields are wrong; see errors."
	if len(fields) == 1 {
		detail = "The field " + fields[0].Field + " " + fields[0].Message + "."
	}
	return &apiError{kind: tenancy.ErrInvalid, detail: detail, fields: fields}
}
