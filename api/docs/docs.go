// Package docs owns Canopy's interactive API documentation: one
// self-contained HTML page, served from the binary with no CDN, that reads
// /openapi.json, lists every operation, and sends requests with a bearer
// token the user sets.
//
// It knows nothing of the API's handlers; it only reads the document.
package docs

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
)

var (
	//go:embed page.html
	pageHTML string
	//go:embed app.js
	appJS string
	//go:embed style.css
	styleCSS string
)

// ProblemType is one kind of problem answer, listed on the page so that a
// problem's type URI (/docs#problem-SLUG) lands on its explanation.
type ProblemType struct {
	Slug   string
	Status int
	Title  string
	Detail string
}

// Handler serves the page. The script and the style are inline and allowed
// by their hashes in the Content-Security-Policy, so the page loads nothing
// from elsewhere and runs no other script.
func Handler(problems []ProblemType) http.Handler {
	tmpl := template.Must(template.New("docs").Parse(pageHTML))
	var buf bytes.Buffer
	err := tmpl.Execute(&buf, struct {
		Script   template.JS
		Style    template.CSS
		Problems []ProblemType
	}{template.JS(appJS), template.CSS(styleCSS), problems})
	if err != nil {
		panic("render docs page: " + err.Error()) // the template is embedded: a build mistake
	}
	page := buf.Bytes()
	csp := "default-src 'none'; connect-src 'self'; img-src 'self' data:; " +
		"script-src '" + hash(appJS) + "'; style-src '" + hash(styleCSS) + "'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(page)
	})
}

// hash is a CSP source expression for an inline element's content.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}
