package metriccheck_test

import (
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"canopy.dev/canopy/collector/aggregate"
	"canopy.dev/canopy/collector/quota"
	"canopy.dev/canopy/dashboards"
)

// templateValues stand in for Grafana's variables so that queries parse.
var templateValues = strings.NewReplacer(
	"$__rate_interval", "1m", "$__range", "3h", "$__interval", "30s",
	"$namespace", "canopy-shop", "$node", "worker-1", "$app", "web", "$pod", "web-0",
)

func TestDashboardsQueryOnlyExportedMetrics(t *testing.T) {
	// The collector's families come from two collectors' descriptors: the
	// aggregator's and the ResourceQuota one's.
	exported := map[string]bool{}
	for source, names := range map[string][]string{
		"aggregate.MetricNames()": aggregate.MetricNames(),
		"quota.MetricNames()":     quota.MetricNames(),
	} {
		if len(names) == 0 {
			t.Fatalf("%s is empty", source)
		}
		for _, name := range names {
			exported[name] = true
		}
	}

	admin, err := dashboards.Admin()
	if err != nil {
		t.Fatal(err)
	}
	proj, err := dashboards.Project("shop")
	if err != nil {
		t.Fatal(err)
	}
	p := parser.NewParser(parser.Options{})
	for _, d := range append(admin, proj...) {
		queries, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			expr, err := p.ParseExpr(templateValues.Replace(q.Expr))
			if err != nil {
				t.Fatalf("%s: query %q does not parse: %v", d.UID, q.Expr, err)
			}
			for _, name := range metricNames(expr) {
				if !exportedName(exported, name) {
					t.Errorf("%s: query %q reads %s, which the collector does not export",
						d.UID, q.Expr, name)
				}
			}
		}
	}
}

// metricNames lists the metric names expr selects.
func metricNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// exportedName accepts a family name, or a histogram's or summary's series.
func exportedName(exported map[string]bool, name string) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}
