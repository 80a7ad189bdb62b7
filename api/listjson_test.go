package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
)

// encodingJSON is the page as encoding/json renders it, the reference the
// hand-written encoder must match byte for byte.
func encodingJSON(s *server, ps []*tenancy.Project, page tenancy.Page, next string,
) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(s.projectList(ps, page, next)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSameJSON fails unless appendProjectList writes what encoding/json
// does, or refuses what it refuses.
func checkSameJSON(t testing.TB, s *server, ps []*tenancy.Project, page tenancy.Page,
	next string) {
	t.Helper()
	want, err := encodingJSON(s, ps, page, next)
	got, ok := s.appendProjectList(nil, ps, page, next)
	switch {
	case err != nil && ok:
		t.Errorf("appendProjectList accepted a page encoding/json refuses (%v)", err)
	case err == nil && !ok:
		t.Errorf("appendProjectList refused a page encoding/json encodes as %s", want)
	case ok && !bytes.Equal(got, want):
		t.Errorf("hand-written encoding differs\n got: %s\nwant: %s", got, want)
	}
}

func TestProjectListEncodingMatches(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	tricky := []string{
		"", "plain-name", `quote " and \ backslash`, "<script>alert(1)</script> & co",
		"ünïcödé ✓ 雲", "line\nbreak\ttab\r\x00\x1f\x7f", "bad utf-8 \xff\xfe\xc3",
		"separators \u2028 \u2029", "emoji 🌲",
	}
	var projects []*tenancy.Project
	for i, text := range tricky {
		projects = append(projects, &tenancy.Project{
			ID: "0190a0b1-" + text, Name: "p" + text, Description: text, Namespace: "ns-" + text,
			Status: tenancy.StatusReady, Reason: text,
			Generation: int64(i) * 7, ObservedGeneration: -int64(i),
			CreatedAt: at.Add(time.Duration(i) * time.Hour),
			UpdatedAt: at.In(time.FixedZone("east", 5*3600+1800)).Add(time.Duration(i)),
			Conditions: []tenancy.Condition{
				{Type: "Ready", Status: "True", Reason: text, Message: text, LastTransitionTime: at},
				{Type: text, Status: "Unknown", LastTransitionTime: time.Time{}},
			},
		})
	}
	projects = append(projects, &tenancy.Project{ID: "bare", Name: "bare"})

	for _, cluster := range []bool{false, true} {
		s := &server{cfg: Config{ClusterConfigured: cluster}}
		checkSameJSON(t, s, nil, tenancy.Page{Limit: 20}, "")
		checkSameJSON(t, s, projects, tenancy.Page{Limit: 20}, "")
		checkSameJSON(t, s, projects[:3], tenancy.Page{Limit: 3, Cursor: "a&b<c>"}, "next+/=")
		checkSameJSON(t, s, projects[1:2], tenancy.Page{Limit: 1, Cursor: "ü"}, "\xff")
	}
}

// TestProjectListEncodingRefusesWhatEncodingJSONRefuses checks the fallback:
// a year encoding/json cannot write answers as writeJSON always did.
func TestProjectListEncodingRefusesWhatEncodingJSONRefuses(t *testing.T) {
	s := &server{cfg: Config{}}
	far := &tenancy.Project{ID: "far", Name: "far",
		CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, ok := s.appendProjectList(nil, []*tenancy.Project{far}, tenancy.Page{Limit: 1}, ""); ok {
		t.Error("appendProjectList accepted the year 10000")
	}

	want := httptest.NewRecorder()
	writeJSON(want, http.StatusOK, s.projectList([]*tenancy.Project{far}, tenancy.Page{}, ""))
	got := httptest.NewRecorder()
	s.writeProjectList(got, []*tenancy.Project{far}, tenancy.Page{}, "", func([]byte) {})
	if got.Code != want.Code || got.Body.String() != want.Body.String() ||
		got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
		t.Errorf("answer %d %q %q, want %d %q %q", got.Code, got.Header(), got.Body,
			want.Code, want.Header(), want.Body)
	}
}

// TestConstantsArePlain checks what appendAround copies without escaping.
func TestConstantsArePlain(t *testing.T) {
	constants := []string{noClusterMessage[0], noClusterMessage[1], projectsPrefix}
	for _, rel := range projectRelations {
		constants = append(constants, rel.key, rel.path)
	}
	for _, c := range constants {
		if quoted, _ := json.Marshal(c); string(quoted) != `"`+c+`"` {
			t.Errorf("constant %q needs escaping: %s", c, quoted)
		}
	}
}

// FuzzProjectListEncoding holds the hand-written encoder to encoding/json on
// arbitrary text, numbers and times.
func FuzzProjectListEncoding(f *testing.F) {
	f.Add("id", "name", "description", "reason", "message", "cursor", "next",
		int64(1), int64(0), int64(1_700_000_000), int32(123_456_789), int32(0), false)
	f.Add("", "<&>", "\u2028\xff", "\"\\", "\x00\n", "ü", "",
		int64(-5), int64(1<<62), int64(-62_135_596_801), int32(999_999_999), int32(-86399), true)
	f.Add("x", "x", "", "", "", "", "", int64(0), int64(0), int64(253_402_300_800), int32(0),
		int32(3600), false)
	f.Fuzz(func(t *testing.T, id, name, desc, reason, msg, cursor, next string,
		gen, observed, unix int64, nanos, offset int32, cluster bool) {
		zone := time.FixedZone("z", int(offset)%(24*3600))
		at := time.Unix(unix, int64(nanos)).In(zone)
		p := &tenancy.Project{
			ID: id, Name: name, Description: desc, Namespace: "canopy-" + name,
			Status: tenancy.Status(reason), Reason: reason, Generation: gen,
			ObservedGeneration: observed, CreatedAt: at, UpdatedAt: at.Add(time.Second),
			Conditions: []tenancy.Condition{{Type: name, Status: "False", Reason: reason,
				Message: msg, LastTransitionTime: at}},
		}
		s := &server{cfg: Config{ClusterConfigured: cluster}}
		checkSameJSON(t, s, []*tenancy.Project{p, p}, tenancy.Page{Limit: 2, Cursor: cursor}, next)
	})
}

// BenchmarkProjectListEncoding encodes the page GET /api/v1/projects answers
// for 20 projects, by hand and with encoding/json.
//
//	go test -run '^$' -bench ProjectListEncoding -benchmem ./api
func BenchmarkProjectListEncoding(b *testing.B) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	var page []*tenancy.Project
	for i := range 20 {
		name := fmt.Sprintf("load-%02d", i)
		page = append(page, &tenancy.Project{ID: "0190a0b1-7c4e-7d2a-9f10-0000000000" +
			fmt.Sprint(10+i), Name: name, Description: "project " + name,
			Namespace: "canopy-" + name, Status: tenancy.StatusProvisioning, Generation: 1,
			CreatedAt: at, UpdatedAt: at})
	}
	s := &server{cfg: Config{}}
	b.Run("by-hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			s.writeProjectList(w, page, tenancy.Page{Limit: 20}, "", func([]byte) {})
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			writeJSON(w, http.StatusOK, s.projectList(page, tenancy.Page{Limit: 20}, ""))
		}
	})
}
