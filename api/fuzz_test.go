package api

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeRequest feeds arbitrary bodies through the request decoding and
// validation of the app and project bodies: it must never panic, and every
// refusal must be a client error with a sentence.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"name":"web","image":"nginx","targetPort":80}`,
		`{"name":"web","image":"ghcr.io/a/b:1@sha256:` + "0000000000000000000000000000000000000000000000000000000000000000" + `","targetPort":1,"replicas":50,"env":{"A":"b"}}`,
		`{"name":"x'; DROP TABLE apps; --"}`,
		`{"name":1}`, `[]`, `null`, `{`, `{"a":1}{"b":2}`, ``, `{"env":{"1":"x"}}`,
		"{\"name\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/v1/projects/p/apps", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var a appCreate
		err := decodeJSON(r, &a)
		if err == nil {
			_ = validateApp(&a)
			_ = validateProjectName(a.Name, DefaultNamespacePrefix, nil)
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Fatalf("decode error %v is not a client answer", err)
		}
		if k := kindOf(err); k.status < 400 || k.status >= 500 || ae.detail == "" {
			t.Fatalf("decode error %v answers %d with detail %q", err, k.status, ae.detail)
		}
	})
}

// FuzzValidateImage checks the image rule never panics and never accepts
// whitespace or an empty reference.
func FuzzValidateImage(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "ghcr.io/org/app@sha256:" + string(bytes.Repeat([]byte("a"), 64)),
		"UPPER", "a b", "", "localhost:5000/x", ":tag", "x@sha256:zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, image string) {
		ok := validateImage("image", image) == nil
		if ok && (image == "" || bytes.ContainsAny([]byte(image), " \t\n\r")) {
			t.Fatalf("accepted image %q", image)
		}
	})
}
