package dashboards

// Metric name stems Canopy serves at three levels: canopy_<level>_<stem>,
// where level is namespace, app or pod.
const (
	cpuUsage      = "cpu_usage_seconds_total"
	cpuRequests   = "cpu_requests_cores"
	cpuLimits     = "cpu_limits_cores"
	memWorkingSet = "memory_working_set_bytes"
	memRSS        = "memory_rss_bytes"
	memRequests   = "memory_requests_bytes"
	memLimits     = "memory_limits_bytes"
	netReceive    = "network_receive_bytes_total"
	netTransmit   = "network_transmit_bytes_total"
	fsUsage       = "filesystem_usage_bytes"
	pods          = "pods"
	restarts      = "container_restarts_total"
	oomEvents     = "oom_events_total"
)

// Quota metric name stems, served at the namespace level only: the hard
// limits of the namespace's ResourceQuota.
const (
	quotaCPURequests = "quota_" + cpuRequests
	quotaCPULimits   = "quota_" + cpuLimits
	quotaMemRequests = "quota_" + memRequests
	quotaMemLimits   = "quota_" + memLimits
)

// Levels of aggregation.
const (
	levelNamespace = "namespace"
	levelApp       = "app"
	levelPod       = "pod"
)

// metric is the full name of a stem at a level.
func metric(level, stem string) string { return "canopy_" + level + "_" + stem }

// limitsRegex matches the legends of request, limit and quota series.
const limitsRegex = ".*(requests|limits|quota)$"

// namespaceSpec is a project's namespace overview: current figures, usage
// against requests and limits, pods and their troubles, and usage per app.
func namespaceSpec(project string) spec {
	ns := scope{}
	return spec{
		kind:    KindNamespace,
		project: project,
		title:   project + " · namespace overview",
		description: "Usage of project " + project + "'s namespace as Canopy's collector " +
			"measures it.",
		sections: []section{
			{title: "Now", panels: nowPanels(ns, levelNamespace)},
			{title: "Resources", panels: resourcePanels(ns, levelNamespace, "", "")},
			{title: "Pods", panels: podPanels(ns, levelNamespace, "", "")},
			{title: "By app", panels: []panel{
				{
					title:       "CPU by app",
					description: "CPU cores each app uses.",
					unit:        unitCores, thresholds: neutral,
					queries: []query{{ns.rate(metric(levelApp, cpuUsage), "app"), "{{app}}"}},
				},
				{
					title:       "Memory working set by app",
					description: "Working set bytes of each app's containers.",
					unit:        unitBytes, thresholds: neutral,
					queries: []query{{ns.gauge(metric(levelApp, memWorkingSet), "app"), "{{app}}"}},
				},
			}},
		},
	}
}

// appsSpec breaks a project's usage down per app, with an app variable.
func appsSpec(project string) spec {
	apps := scope{matchers: `app=~"$app"`}
	return spec{
		kind:        KindApps,
		project:     project,
		title:       project + " · apps",
		description: "Usage of each app of project " + project + ".",
		variables: []cogVariable{
			labelVariable("app", "app", metric(levelApp, cpuUsage)),
		},
		sections: []section{
			{title: "Resources", panels: resourcePanels(apps, levelApp, "app", "{{app}}")},
			{title: "Pods", panels: podPanels(apps, levelApp, "app", "{{app}}")},
		},
	}
}

// podsSpec breaks a project's usage down per pod, with app and pod variables.
func podsSpec(project string) spec {
	pods := scope{matchers: `app=~"$app", pod=~"$pod"`}
	sel := metric(levelPod, cpuUsage)
	return spec{
		kind:        KindPods,
		project:     project,
		title:       project + " · pods",
		description: "Usage of each pod of project " + project + ".",
		variables: []cogVariable{
			labelVariable("app", "app", sel),
			labelVariable("pod", "pod", sel+`{app=~"$app"}`),
		},
		sections: []section{
			{title: "Resources", panels: resourcePanels(pods, levelPod, "pod", "{{pod}}")},
			{title: "Restarts and OOM kills", panels: troublePanels(pods, levelPod, "pod", "{{pod}}")},
		},
	}
}

// nowPanels are single figures: usage, usage of limits, restarts and OOM
// kills over the time range.
func nowPanels(s scope, level string) []panel {
	cpu := s.rate(metric(level, cpuUsage), "")
	mem := s.gauge(metric(level, memWorkingSet), "")
	return []panel{
		{
			title: "CPU", look: lookStat, width: 4,
			description: "CPU cores in use now.",
			unit:        unitCores, thresholds: neutral,
			queries: []query{{cpu, "cores"}},
		},
		{
			title: "CPU of limits", look: lookStat, width: 4,
			description: "CPU in use as a share of the containers' CPU limits. " +
				"Containers are throttled at their limit.",
			unit: unitRatio, thresholds: ofLimit,
			queries: []query{{ratio(cpu, s.gauge(metric(level, cpuLimits), "")), "of limits"}},
		},
		{
			title: "Memory", look: lookStat, width: 4,
			description: "Working set bytes in use now: the figure the kubelet evicts on " +
				"and the kernel kills on at the limit.",
			unit: unitBytes, thresholds: neutral,
			queries: []query{{mem, "working set"}},
		},
		{
			title: "Memory of limits", look: lookStat, width: 4,
			description: "Working set as a share of the containers' memory limits. " +
				"A container reaching its limit is OOM-killed.",
			unit: unitRatio, thresholds: ofLimit,
			queries: []query{{ratio(mem, s.gauge(metric(level, memLimits), "")), "of limits"}},
		},
		{
			title: "Restarts", look: lookStat, width: 4,
			description: "Container restarts over the dashboard's time range.",
			unit:        unitCount, thresholds: fewBad,
			queries: []query{{s.increase(metric(level, restarts), "", rangeWindow), "restarts"}},
		},
		{
			title: "OOM kills", look: lookStat, width: 4,
			description: "Containers killed for running out of memory over the " +
				"dashboard's time range.",
			unit: unitCount, thresholds: anyBad,
			queries: []query{{s.increase(metric(level, oomEvents), "", rangeWindow), "OOM kills"}},
		},
	}
}

// resourcePanels draw CPU and memory against requests and limits (and, for
// namespaces, their quota), network and filesystem, per group of by (a total
// when by is empty).
func resourcePanels(s scope, level, by, legend string) []panel {
	name := func(what string) string { return joinLegend(legend, what) }
	cpu := []query{
		{s.rate(metric(level, cpuUsage), by), name("usage")},
		{s.gauge(metric(level, cpuRequests), by), name("requests")},
		{s.gauge(metric(level, cpuLimits), by), name("limits")},
	}
	mem := []query{
		{s.gauge(metric(level, memWorkingSet), by), name("working set")},
		{s.gauge(metric(level, memRSS), by), name("RSS")},
		{s.gauge(metric(level, memRequests), by), name("requests")},
		{s.gauge(metric(level, memLimits), by), name("limits")},
	}
	against := "their limits (dashed)."

	// Only namespaces have a ResourceQuota.
	if level == levelNamespace {
		cpu = append(cpu,
			query{s.gauge(metric(level, quotaCPURequests), by), name("requests quota")},
			query{s.gauge(metric(level, quotaCPULimits), by), name("limits quota")})
		mem = append(mem,
			query{s.gauge(metric(level, quotaMemRequests), by), name("requests quota")},
			query{s.gauge(metric(level, quotaMemLimits), by), name("limits quota")})
		against = "their limits, and the namespace quota on both (dashed). New pods " +
			"that would go over the quota are refused."
	}

	return []panel{
		{
			title: "CPU",
			description: "CPU cores in use (rate of CPU seconds), against the CPU the " +
				"containers request and " + against,
			unit: unitCores, thresholds: neutral, dashed: limitsRegex,
			queries: cpu,
		},
		{
			title: "Memory",
			description: "Working set and RSS bytes, against the memory the containers " +
				"request and " + against,
			unit: unitBytes, thresholds: neutral, dashed: limitsRegex,
			queries: mem,
		},
		{
			title:       "Network",
			description: "Bytes per second the pods receive and transmit.",
			unit:        unitBytesPerSec, thresholds: neutral,
			queries: []query{
				{s.rate(metric(level, netReceive), by), name("receive")},
				{s.rate(metric(level, netTransmit), by), name("transmit")},
			},
		},
		{
			title:       "Filesystem",
			description: "Bytes the containers' writable layers and logs use on the nodes.",
			unit:        unitBytes, thresholds: neutral,
			queries: []query{{s.gauge(metric(level, fsUsage), by), name("used")}},
		},
	}
}

// podPanels show pods by phase and the troubles of their containers.
func podPanels(s scope, level, by, legend string) []panel {
	groups := "phase"
	if by != "" {
		groups = by + ", phase"
	}
	out := []panel{{
		title:       "Pods by phase",
		description: "Pods in each phase. Failed or long Pending pods need a look.",
		unit:        unitCount, thresholds: neutral,
		queries: []query{{s.gauge(metric(level, pods), groups), joinLegend(legend, "{{phase}}")}},
	}}
	return append(out, troublePanels(s, level, by, legend)...)
}

// troublePanels count container restarts and OOM kills per interval.
func troublePanels(s scope, level, by, legend string) []panel {
	return []panel{
		{
			title:       "Restarts",
			description: "Container restarts in each interval.",
			unit:        unitCount, thresholds: fewBad, bars: true,
			queries: []query{{s.increase(metric(level, restarts), by, rateWindow),
				joinLegend(legend, "restarts")}},
		},
		{
			title:       "OOM kills",
			description: "Containers killed for running out of memory in each interval.",
			unit:        unitCount, thresholds: anyBad, bars: true,
			queries: []query{{s.increase(metric(level, oomEvents), by, rateWindow),
				joinLegend(legend, "OOM kills")}},
		},
	}
}

// joinLegend puts a group's legend before what the series shows.
func joinLegend(group, what string) string {
	if group == "" {
		return what
	}
	return group + " " + what
}
