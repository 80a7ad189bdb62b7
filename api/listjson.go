package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"canopy.dev/canopy/tenancy"
)

// The answer of GET /api/v1/projects is the API's hottest: encoding/json
// spent as long on it as the store took to read the page, most of it in
// reflection, in time.Time's MarshalJSON and in building each project's
// links and conditions first. appendProjectList writes the same bytes
// straight from the store's projects into a pooled buffer.
// TestProjectListEncodingMatches and FuzzProjectListEncoding hold it to
// encoding/json's output for the same page.

// jsonBuffers are the buffers of appendProjectList, kept between requests.
var jsonBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// maxPooledBuffer bounds what goes back to jsonBuffers, so that one huge
// answer does not stay in memory.
const maxPooledBuffer = 256 << 10

// writeProjectList answers the page as writeJSON(w, 200, s.projectList(...))
// would, byte for byte.
func (s *server) writeProjectList(
	w http.ResponseWriter, projects []*tenancy.Project, page tenancy.Page, next string,
	keep func(body []byte),
) {
	bp := jsonBuffers.Get().(*[]byte)
	b, ok := s.appendProjectList((*bp)[:0], projects, page, next)
	if !ok {
		// A time encoding/json refuses: let it answer as it always has.
		writeJSON(w, http.StatusOK, s.projectList(projects, page, next))
	} else {
		b = append(b, '\n')
		keep(b)
		writeEncoded(w, b)
	}
	if cap(b) <= maxPooledBuffer {
		*bp = b[:0]
		jsonBuffers.Put(bp)
	}
}

// projectList is the page as encoding/json renders it.
func (s *server) projectList(
	projects []*tenancy.Project, page tenancy.Page, next string,
) list[projectJSON] {
	out := list[projectJSON]{Items: make([]projectJSON, 0, len(projects)), NextCursor: next,
		Links: pageLinks("/api/v1/projects", page.Limit, page.Cursor, next)}
	for _, project := range projects {
		out.Items = append(out.Items, s.projectJSON(project))
	}
	return out
}

// appendProjectList appends the JSON of s.projectList(projects, page, next),
// without the final newline. It reports false, leaving b unusable, for a
// time that encoding/json would refuse.
func (s *server) appendProjectList(
	b []byte, projects []*tenancy.Project, page tenancy.Page, next string,
) ([]byte, bool) {
	b = append(b, `{"items":[`...)
	for i, p := range projects {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = s.appendProject(b, p); !ok {
			return b, false
		}
	}
	b = append(b, ']')
	if next != "" {
		b = appendField(b, "nextCursor", next)
	}
	l := pageLinks("/api/v1/projects", page.Limit, page.Cursor, next)
	b = append(b, `,"links":{"self":`...)
	b = appendString(b, l.Self)
	if l.Next != "" {
		b = appendField(b, "next", l.Next)
	}
	return append(b, "}}"...), true
}

// appendProject appends the JSON of s.projectJSON(p).
func (s *server) appendProject(b []byte, p *tenancy.Project) ([]byte, bool) {
	ok := true
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	b = appendField(b, "name", p.Name)
	if p.Description != "" {
		b = appendField(b, "description", p.Description)
	}
	b = appendField(b, "namespace", p.Namespace)
	b = appendField(b, "status", string(p.Status))
	if p.Reason != "" {
		b = appendField(b, "reason", p.Reason)
	}
	b = append(b, `,"conditions":[`...)
	for i, c := range p.Conditions {
		if i > 0 {
			b = append(b, ',')
		}
		b, ok = appendCondition(b, c)
	}
	if !s.cfg.ClusterConfigured {
		if len(p.Conditions) > 0 {
			b = append(b, ',')
		}
		var okc bool
		b, okc = appendNoClusterCondition(b, p)
		ok = ok && okc
	}
	b = append(b, `],"generation":`...)
	b = strconv.AppendInt(b, p.Generation, 10)
	b = append(b, `,"observedGeneration":`...)
	b = strconv.AppendInt(b, p.ObservedGeneration, 10)
	var okc, oku bool
	b, okc = appendTimeField(b, "createdAt", p.CreatedAt)
	b, oku = appendTimeField(b, "updatedAt", p.UpdatedAt)

	// The links are projectPath(p.ID) and paths below it, written without
	// building them.
	id := url.PathEscape(p.ID)
	b = append(b, `,"links":{"self":`...)
	b = appendAround(b, projectsPrefix, id, "")
	for _, rel := range projectRelations {
		b = append(b, `,"`...)
		b = append(b, rel.key...)
		b = append(b, `":`...)
		b = appendAround(b, projectsPrefix, id, rel.path)
	}
	return append(b, "}}"...), ok && okc && oku
}

// projectRelations are the links of a project after self, in projectJSON's
// field order: the key and the path below the project's.
var projectRelations = []struct{ key, path string }{
	{"apps", "/apps"}, {"members", "/members"}, {"tokens", "/tokens"},
	{"usage", "/usage"}, {"prometheus", "/prometheus"},
}

// appendCondition appends the JSON of c.
func appendCondition(b []byte, c tenancy.Condition) ([]byte, bool) {
	b = append(b, `{"type":`...)
	b = appendString(b, c.Type)
	b = appendField(b, "status", c.Status)
	b = appendField(b, "reason", c.Reason)
	b = appendField(b, "message", c.Message)
	b, ok := appendTimeField(b, "lastTransitionTime", c.LastTransitionTime)
	return append(b, '}'), ok
}

// appendNoClusterCondition appends the JSON of noClusterCondition(p)
// without building its message.
func appendNoClusterCondition(b []byte, p *tenancy.Project) ([]byte, bool) {
	b = append(b, `{"type":"`+ConditionClusterReady+
		`","status":"False","reason":"NoClusterConfigured","message":`...)
	b = appendAround(b, noClusterMessage[0], p.Namespace, noClusterMessage[1])
	b, ok := appendTimeField(b, "lastTransitionTime", p.CreatedAt)
	return append(b, '}'), ok
}

// appendField appends ,"key":"value"; key needs no escaping.
func appendField(b []byte, key, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":`...)
	return appendString(b, value)
}

// appendTimeField appends ,"key":"time" as time.Time's MarshalJSON does,
// and false where MarshalJSON fails: a year outside 0–9999 or a zone
// offset of a day or more.
func appendTimeField(b []byte, key string, t time.Time) ([]byte, bool) {
	b = append(b, `,"`...)
	b = append(b, key...)
	b = append(b, `":"`...)
	b = t.AppendFormat(b, time.RFC3339Nano)
	_, offset := t.Zone()
	ok := t.Year() >= 0 && t.Year() <= 9999 && offset > -24*3600 && offset < 24*3600
	return append(b, '"'), ok
}

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it (HTML characters included).
func appendString(b []byte, s string) []byte { return appendAround(b, "", s, "") }

// appendAround appends before+s+after as one JSON string, escaped as
// encoding/json escapes it, without joining them. before and after are
// constants that need no escaping (TestConstantsArePlain); s is copied as it
// is when it needs none either, as ids, names and paths do, and anything
// else goes through encoding/json.
func appendAround(b []byte, before, s, after string) []byte {
	if !plain(s) {
		quoted, _ := json.Marshal(before + s + after) // a string always encodes
		return append(b, quoted...)
	}
	b = append(b, '"')
	b = append(b, before...)
	b = append(b, s...)
	b = append(b, after...)
	return append(b, '"')
}

// escaped marks the bytes that encoding/json does not copy as they are:
// control characters, the quote, the backslash, the HTML characters <, >
// and &, and every byte of a multi-byte (or invalid) UTF-8 sequence.
var escaped = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c >= utf8.RuneSelf || strings.IndexByte(`"\<>&`, byte(c)) >= 0
	}
	return t
}()

// plain reports whether encoding/json copies s unchanged between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if escaped[s[i]] {
			return false
		}
	}
	return true
}

// writeEncoded answers 200 with a JSON body already encoded. With its length
// known the answer goes out in one piece, not in chunks of net/http's 2 KiB
// buffer.
func writeEncoded(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
