package dashboards_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"canopy.dev/canopy/dashboards"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// all returns the admin dashboards and those of project "example".
func all(t *testing.T) []dashboards.Dashboard {
	t.Helper()
	admin, err := dashboards.Admin()
	if err != nil {
		t.Fatalf("Admin: %v", err)
	}
	proj, err := dashboards.Project("example")
	if err != nil {
		t.Fatalf("Project: %v", err)
	}
	return append(admin, proj...)
}

func TestGolden(t *testing.T) {
	files, err := dashboards.Render("example")
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if len(files) != 5 {
		t.Fatalf("Render returned %d files, want 2 admin and 3 project dashboards", len(files))
	}
	for _, f := range files {
		golden := filepath.Join("testdata", filepath.Base(f.Path))
		if *update {
			if err := os.WriteFile(golden, f.JSON, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("read golden file (run go test ./dashboards -update): %v", err)
		}
		if !bytes.Equal(f.JSON, want) {
			t.Errorf("%s differs from %s; review the change and rerun with -update",
				f.Path, golden)
		}
	}
}

// substitutions give template variables plausible values so that the
// queries parse as Grafana would send them.
var substitutions = strings.NewReplacer(
	"$__rate_interval", "1m",
	"$__range", "3h",
	"$__interval", "30s",
	"$namespace", "canopy-shop",
	"$node", "worker-1",
	"$app", "web",
	"$pod", "web-6d9f7c5b4-x2kqp",
)

// counterFuncs are the functions that may read a counter.
var counterFuncs = map[string]bool{"rate": true, "increase": true}

func TestQueriesParseAndReadCountersRight(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, d := range all(t) {
		queries, err := d.Queries()
		if err != nil {
			t.Fatalf("%s: Queries: %v", d.UID, err)
		}
		if len(queries) == 0 {
			t.Fatalf("%s has no queries", d.UID)
		}
		for _, q := range queries {
			raw := q.Expr
			if strings.Contains(substitutions.Replace(raw), "$") {
				t.Errorf("%s: query %q uses a variable with no test value", d.UID, raw)
			}
			expr, err := p.ParseExpr(substitutions.Replace(raw))
			if err != nil {
				t.Errorf("%s: query %q does not parse: %v", d.UID, raw, err)
				continue
			}
			checkSelectors(t, d, q, expr)
		}
	}
}

// checkSelectors checks every selector of expr: canopy_* metrics only, each
// counter inside rate() or increase() and nothing else there, namespace
// matchers only where the dashboard is an admin one.
func checkSelectors(t *testing.T, d dashboards.Dashboard, q dashboards.Query, expr parser.Expr) {
	t.Helper()
	raw := q.Expr
	parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if !strings.HasPrefix(vs.Name, "canopy_") {
			t.Errorf("%s: query %q reads %q, not a canopy_* metric", d.UID, raw, vs.Name)
		}
		// A variable's selector only lists label values; a panel reads values.
		counter := strings.HasSuffix(vs.Name, "_total") && q.Variable == ""
		inRate := len(path) >= 2 && isCounterCall(path[len(path)-2])
		if counter != inRate {
			t.Errorf("%s: query %q: %s counter=%t but inside rate/increase=%t",
				d.UID, raw, vs.Name, counter, inRate)
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "namespace" && !d.Kind.Admin() {
				t.Errorf("%s: project query %q selects a namespace; the tenant proxy does",
					d.UID, raw)
			}
		}
		return nil
	})
}

// isCounterCall reports whether n is a call of rate or increase.
func isCounterCall(n parser.Node) bool {
	c, ok := n.(*parser.Call)
	return ok && counterFuncs[c.Func.Name]
}

// panelJSON is what the tests read of a rendered panel.
type panelJSON struct {
	Type        string `json:"type"`
	ID          int    `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds struct {
				Steps []struct {
					Value *float64 `json:"value"`
					Color string   `json:"color"`
				} `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func TestEveryPanelHasUnitDescriptionThresholds(t *testing.T) {
	for _, d := range all(t) {
		b, err := d.JSON()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			UID    string      `json:"uid"`
			Panels []panelJSON `json:"panels"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: rendered JSON does not decode: %v", d.UID, err)
		}
		if doc.UID != d.UID {
			t.Errorf("rendered uid %q, want %q", doc.UID, d.UID)
		}
		ids := map[int]bool{}
		for _, p := range doc.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", d.UID, p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				continue
			}
			checkPanel(t, d.UID, p)
		}
	}
}

// checkPanel checks one visual panel's metadata.
func checkPanel(t *testing.T, uid string, p panelJSON) {
	t.Helper()
	if p.Title == "" || p.Description == "" {
		t.Errorf("%s: panel %d %q lacks a title or description", uid, p.ID, p.Title)
	}
	if p.FieldConfig.Defaults.Unit == "" {
		t.Errorf("%s: panel %q has no unit", uid, p.Title)
	}
	steps := p.FieldConfig.Defaults.Thresholds.Steps
	if len(steps) == 0 || steps[0].Value != nil {
		t.Errorf("%s: panel %q thresholds do not start with a base step", uid, p.Title)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i].Value == nil || (i > 1 && *steps[i].Value <= *steps[i-1].Value) {
			t.Errorf("%s: panel %q thresholds are not increasing", uid, p.Title)
		}
	}
	if len(p.Targets) == 0 {
		t.Errorf("%s: panel %q has no query", uid, p.Title)
	}
	refs := map[string]bool{}
	for _, tg := range p.Targets {
		if refs[tg.RefID] {
			t.Errorf("%s: panel %q repeats refId %q", uid, p.Title, tg.RefID)
		}
		refs[tg.RefID] = true
	}
}

func TestAdminDashboardsFilterByNamespaceVariable(t *testing.T) {
	admin, err := dashboards.Admin()
	if err != nil {
		t.Fatal(err)
	}
	namespaced := regexp.MustCompile(`canopy_namespace_[a-z_]+(\{[^}]*\})?`)
	for _, d := range admin {
		queries, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			if q.Variable == "namespace" {
				continue // the variable lists the namespaces to choose from
			}
			for _, sel := range namespaced.FindAllString(q.Expr, -1) {
				if !strings.Contains(sel, `namespace=~"$namespace"`) {
					t.Errorf("%s: selector %s ignores the namespace variable", d.UID, sel)
				}
			}
		}
	}
}

func TestUID(t *testing.T) {
	long := strings.Repeat("a", 40) + "-" + strings.Repeat("b", 22) // 63 characters
	twin := strings.Repeat("a", 40) + "-" + strings.Repeat("c", 22) // same first 41
	valid := regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

	cases := []struct {
		kind    dashboards.Kind
		project string
		want    string
	}{
		{dashboards.KindCluster, "", "canopy-cluster"},
		{dashboards.KindNodes, "ignored", "canopy-nodes"},
		{dashboards.KindNamespace, "shop", "canopy-ns-shop"},
		{dashboards.KindPods, "shop", "canopy-pods-shop"},
		{dashboards.KindApps, "shop", "canopy-apps-shop"},
		// 12 + 28 characters is exactly 40: kept whole.
		{dashboards.KindPods, strings.Repeat("p", 28), "canopy-pods-" + strings.Repeat("p", 28)},
	}
	for _, c := range cases {
		if got := dashboards.UID(c.kind, c.project); got != c.want {
			t.Errorf("UID(%s, %q) = %q, want %q", c.kind, c.project, got, c.want)
		}
	}

	for _, k := range dashboards.ProjectKinds {
		a, b := dashboards.UID(k, long), dashboards.UID(k, twin)
		if len(a) > dashboards.MaxUIDLength || len(b) > dashboards.MaxUIDLength {
			t.Errorf("UID(%s, 63 chars) = %q (%d chars), over %d", k, a, len(a),
				dashboards.MaxUIDLength)
		}
		if a == b {
			t.Errorf("UID(%s) is %q for two different long names", k, a)
		}
		if !strings.HasPrefix(a, "canopy-"+string(k)+"-aaaa") || !valid.MatchString(a) {
			t.Errorf("UID(%s, long) = %q: lost its kind, its name or its charset", k, a)
		}
		if a != dashboards.UID(k, long) {
			t.Errorf("UID(%s, long) is not stable", k)
		}
	}
}

func TestProjectRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "Shop", "-shop", "shop-", "a/b", strings.Repeat("a", 64)} {
		if _, err := dashboards.Project(name); !errors.Is(err, dashboards.ErrInvalidProject) {
			t.Errorf("Project(%q) error = %v, want ErrInvalidProject", name, err)
		}
	}
}

func TestRenderAllWritesEveryDashboard(t *testing.T) {
	dir := t.TempDir()
	if err := dashboards.RenderAll(dir, "shop"); err != nil {
		t.Fatalf("RenderAll: %v", err)
	}
	want := []string{
		"admin/canopy-cluster.json",
		"admin/canopy-nodes.json",
		"projects/shop/canopy-ns-shop.json",
		"projects/shop/canopy-pods-shop.json",
		"projects/shop/canopy-apps-shop.json",
	}
	for _, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, w))
		if err != nil {
			t.Errorf("RenderAll did not write %s: %v", w, err)
			continue
		}
		var doc struct {
			UID string `json:"uid"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.UID+".json" != filepath.Base(w) {
			t.Errorf("%s holds uid %q (error %v)", w, doc.UID, err)
		}
	}

	// No project means the example project.
	dir = t.TempDir()
	if err := dashboards.RenderAll(dir, ""); err != nil {
		t.Fatalf("RenderAll without project: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "projects/example/canopy-ns-example.json")); err != nil {
		t.Errorf("RenderAll without project wrote no example: %v", err)
	}

	// A bad project name writes nothing.
	dir = t.TempDir()
	if err := dashboards.RenderAll(dir, "Not_A_Label"); !errors.Is(err, dashboards.ErrInvalidProject) {
		t.Errorf("RenderAll(bad name) error = %v, want ErrInvalidProject", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("RenderAll(bad name) wrote %d entries", len(entries))
	}
}
