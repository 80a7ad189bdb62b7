package promproxy

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// benchExprs are queries of the size the namespace dashboards send.
var benchExprs = map[string]string{
	"rate": `sum by (pod) (rate(container_cpu_usage_seconds_total{container!=""}[5m]))`,
	"ratio": `sum by (pod) (container_memory_working_set_bytes{container!="",image!=""})` +
		` / on(pod) group_left sum by (pod) (container_spec_memory_limit_bytes{container!=""})` +
		` * 100`,
	"subquery": `max_over_time(sum by (namespace) ` +
		`(rate(canopy_namespace_cpu_usage_seconds_total[1m]))[1h:1m] offset 5m)`,
	"50 selectors": fiftySelectors(),
}

func fiftySelectors() string {
	parts := make([]string, 50)
	for i := range parts {
		parts[i] = `rate(metric_` + strconv.Itoa(i) + `{pod=~"web-.*"}[5m])`
	}
	return strings.Join(parts, " or ")
}

func BenchmarkEnforceExpr(b *testing.B) {
	for name, expr := range benchExprs {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EnforceExpr("canopy-a", expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEnforceSelector(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, err := EnforceSelector("canopy-a", `{__name__=~"container_.*",pod!=""}`)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRewriteQueryRange measures the whole parameter handling of one
// Grafana range query, without the network.
func BenchmarkRewriteQueryRange(b *testing.B) {
	in := url.Values{"query": {benchExprs["ratio"]}, "start": {"1700000000"},
		"end": {"1700003600"}, "step": {"15"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := rewrite(epQueryRange, "canopy-a", in); err != nil {
			b.Fatal(err)
		}
	}
}
