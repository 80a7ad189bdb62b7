package aggregate

import (
	"maps"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// level is the grain of a tenant family: namespace, app or pod.
type level uint8

const (
	levelNamespace level = iota
	levelApp
	levelPod
)

var levelNames = [...]string{"namespace", "app", "pod"}

// levelLabels are the labels of each level's families, in the order that
// row.labelValues fills them.
var levelLabels = [...][]string{
	{"namespace", "project"},
	{"namespace", "project", "app"},
	{"namespace", "project", "pod", "app"},
}

func (r *row) labelValues(l level) []string {
	switch l {
	case levelApp:
		return []string{r.ns, r.project, r.app}
	case levelPod:
		return []string{r.ns, r.project, r.pod, r.app}
	}
	return []string{r.ns, r.project}
}

// tenantFamily is one figure exposed at the namespace, app and pod levels
// as canopy_<level>_<suffix>.
type tenantFamily struct {
	suffix string
	help   string
	typ    prometheus.ValueType
	value  func(*figures) float64
	// measured families are gauges of current usage: a row no node reported
	// in this cycle (its node is down, say) has none, so Grafana shows a gap.
	measured bool
}

// tenantFamilies is the one table the Descs, Collect and MetricNames use.
var tenantFamilies = []tenantFamily{
	{"cpu_usage_seconds_total", "CPU seconds used by application containers; " +
		"counts a container's whole value when first seen, then its increases.",
		prometheus.CounterValue, func(f *figures) float64 { return f.cpu }, false},
	{"memory_working_set_bytes", "Working set of the current application containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.ws }, true},
	{"memory_rss_bytes", "RSS of the current application containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.rss }, true},
	{"network_receive_bytes_total", "Bytes received by the pods' interfaces " +
		"(host-network pods excluded).",
		prometheus.CounterValue, func(f *figures) float64 { return f.rx }, false},
	{"network_transmit_bytes_total", "Bytes sent by the pods' interfaces " +
		"(host-network pods excluded).",
		prometheus.CounterValue, func(f *figures) float64 { return f.tx }, false},
	{"filesystem_usage_bytes", "Filesystem bytes used by application containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.fs }, true},
	{"container_restarts_total", "Container restarts; a deleted pod keeps what it added.",
		prometheus.CounterValue, func(f *figures) float64 { return f.restarts }, false},
	{"oom_events_total", "Out-of-memory events of application containers.",
		prometheus.CounterValue, func(f *figures) float64 { return f.oom }, false},
	{"cpu_requests_cores", "CPU requested by the pods' containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.cpuReq }, false},
	{"cpu_limits_cores", "CPU limits of the pods' containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.cpuLim }, false},
	{"memory_requests_bytes", "Memory requested by the pods' containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.memReq }, false},
	{"memory_limits_bytes", "Memory limits of the pods' containers.",
		prometheus.GaugeValue, func(f *figures) float64 { return f.memLim }, false},
}

// Names of the families outside the per-level table.
const (
	nameScrapeDuration = "canopy_scrape_duration_seconds"
	nameScrapeErrors   = "canopy_scrape_errors_total"
	nameScrapeSamples  = "canopy_scrape_samples"
	nameTargetUp       = "canopy_target_up"
	nameScrapeDropped  = "canopy_scrape_dropped_samples_total"
)

// descs are every Desc the Aggregator exposes, built once from the tables.
type descs struct {
	tenant      [3][]*prometheus.Desc // [level][family]
	pods        [2]*prometheus.Desc   // canopy_{namespace,app}_pods{phase}
	usageSource *prometheus.Desc
	duration    *prometheus.Desc
	errors      *prometheus.Desc
	samples     *prometheus.Desc
	up          *prometheus.Desc
	dropped     *prometheus.Desc
}

var allDescs = buildDescs()

func buildDescs() *descs {
	d := &descs{}
	for l := range levelNames {
		for _, f := range tenantFamilies {
			name := "canopy_" + levelNames[l] + "_" + f.suffix
			d.tenant[l] = append(d.tenant[l], prometheus.NewDesc(name, f.help, levelLabels[l], nil))
		}
	}
	for l := range d.pods {
		name := "canopy_" + levelNames[l] + "_pods"
		labels := append(slices.Clone(levelLabels[l]), "phase")
		d.pods[l] = prometheus.NewDesc(name, "Pods by phase.", labels, nil)
	}
	d.usageSource = prometheus.NewDesc("canopy_namespace_pods_usage_source",
		"Pods whose CPU and memory came from each source: cadvisor (application "+
			"containers), pod_cgroup (no container series), resource, summary.",
		[]string{"namespace", "project", "source"}, nil)
	target := []string{"node", "endpoint"}
	d.duration = prometheus.NewDesc(nameScrapeDuration,
		"Duration of the endpoint's last scrape.", target, nil)
	d.errors = prometheus.NewDesc(nameScrapeErrors,
		"Failed scrapes of the endpoint, by reason.", append(target, "reason"), nil)
	d.samples = prometheus.NewDesc(nameScrapeSamples,
		"Samples of Canopy's families in the endpoint's last scrape.", target, nil)
	d.up = prometheus.NewDesc(nameTargetUp,
		"1 if the endpoint's last scrape succeeded, else 0.", target, nil)
	d.dropped = prometheus.NewDesc(nameScrapeDropped,
		"Lines of Canopy's families dropped from the endpoint's scrapes, by reason.",
		append(target, "reason"), nil)
	return d
}

func (d *descs) all() []*prometheus.Desc {
	var out []*prometheus.Desc
	for _, l := range d.tenant {
		out = append(out, l...)
	}
	out = append(out, d.pods[:]...)
	return append(out, d.usageSource, d.duration, d.errors, d.samples, d.up, d.dropped)
}

// MetricNames returns the name of every metric family the Aggregator
// exposes, sorted, from the same table that builds its Descs.
func MetricNames() []string {
	var names []string
	for _, l := range levelNames {
		for _, f := range tenantFamilies {
			names = append(names, "canopy_"+l+"_"+f.suffix)
		}
	}
	names = append(names, "canopy_namespace_pods", "canopy_app_pods",
		"canopy_namespace_pods_usage_source", nameScrapeDuration, nameScrapeErrors,
		nameScrapeSamples, nameTargetUp, nameScrapeDropped)
	slices.Sort(names)
	return names
}

// Describe sends every Desc the Aggregator exposes.
func (a *Aggregator) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs.all() {
		ch <- d
	}
}

// Collect sends the latest snapshot's metrics. It never waits for a cycle.
func (a *Aggregator) Collect(ch chan<- prometheus.Metric) {
	// TODO(collector): ConstMetrics allocate per series; at 100k pods a
	// writer of the exposition straight from the snapshot would be cheaper.
	s := a.last.Load()
	d := allDescs
	emit := func(l level, rows []row) {
		for i := range rows {
			r := &rows[i]
			lv := r.labelValues(l)
			for k, f := range tenantFamilies {
				if f.measured && r.measured == 0 {
					continue
				}
				ch <- prometheus.MustNewConstMetric(d.tenant[l][k], f.typ, f.value(&r.figures), lv...)
			}
			if l == levelPod {
				continue
			}
			for k, p := range phases {
				ch <- prometheus.MustNewConstMetric(d.pods[l], prometheus.GaugeValue,
					float64(r.phases[k]), append(lv, p)...)
			}
			if l == levelNamespace {
				for k, src := range sources {
					ch <- prometheus.MustNewConstMetric(d.usageSource, prometheus.GaugeValue,
						float64(r.sources[k]), append(lv, src)...)
				}
			}
		}
	}
	emit(levelNamespace, s.spaces)
	emit(levelApp, s.apps)
	emit(levelPod, s.pods)
	a.collectTargets(ch, s)
}

func (a *Aggregator) collectTargets(ch chan<- prometheus.Metric, s *snapshot) {
	d := allDescs
	for _, t := range s.targets {
		up := 0.0
		if t.up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(d.up, prometheus.GaugeValue, up, t.node, t.endpoint)
		ch <- prometheus.MustNewConstMetric(d.duration, prometheus.GaugeValue, t.duration,
			t.node, t.endpoint)
		ch <- prometheus.MustNewConstMetric(d.samples, prometheus.GaugeValue, t.samples,
			t.node, t.endpoint)
		for _, reason := range slices.Sorted(maps.Keys(t.errors)) {
			ch <- prometheus.MustNewConstMetric(d.errors, prometheus.CounterValue,
				t.errors[reason], t.node, t.endpoint, reason)
		}
		for _, reason := range slices.Sorted(maps.Keys(t.dropped)) {
			ch <- prometheus.MustNewConstMetric(d.dropped, prometheus.CounterValue,
				t.dropped[reason], t.node, t.endpoint, reason)
		}
	}
}
