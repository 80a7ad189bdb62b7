package dashboards

import "fmt"

// Counters are read with rate() or increase() over $__rate_interval, which
// Grafana keeps at least four scrape intervals long; totals over the whole
// time range use $__range.
const (
	rateWindow  = "$__rate_interval"
	rangeWindow = "$__range"
)

// scope writes the selectors of one dashboard: a metric name and the label
// matchers every selector of that dashboard carries (none on project
// dashboards, whose data source already forces the namespace).
type scope struct {
	matchers string
}

// sel is a selector of metric with the scope's matchers and extra ones.
func (s scope) sel(metric string, extra ...string) string {
	m := s.matchers
	for _, e := range extra {
		if m != "" {
			m += ", "
		}
		m += e
	}
	if m == "" {
		return metric
	}
	return metric + "{" + m + "}"
}

// rate is the per-second rate of a counter, summed by labels (none: a total).
func (s scope) rate(metric, by string, extra ...string) string {
	return sum(by, fmt.Sprintf("rate(%s[%s])", s.sel(metric, extra...), rateWindow))
}

// increase is how much a counter grew over window, summed by labels.
func (s scope) increase(metric, by, window string, extra ...string) string {
	return sum(by, fmt.Sprintf("increase(%s[%s])", s.sel(metric, extra...), window))
}

// gauge is a gauge summed by labels.
func (s scope) gauge(metric, by string, extra ...string) string {
	return sum(by, s.sel(metric, extra...))
}

// sum wraps expr in sum, grouped by the labels in by when there are any.
func sum(by, expr string) string {
	if by == "" {
		return "sum(" + expr + ")"
	}
	return "sum by (" + by + ") (" + expr + ")"
}

// ratio divides two expressions, the shape of every "of limit" panel.
func ratio(num, den string) string { return num + " / " + den }
