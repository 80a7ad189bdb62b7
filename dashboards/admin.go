package dashboards

// Collector health metrics, labelled node and endpoint.
const (
	targetUp       = "canopy_target_up"
	scrapeErrors   = "canopy_scrape_errors_total"
	scrapeDuration = "canopy_scrape_duration_seconds"
	scrapeSamples  = "canopy_scrape_samples"
)

// clusterSpec is the admin overview: every namespace's usage, selectable with
// a namespace variable, and the collector's health.
func clusterSpec() spec {
	ns := scope{matchers: `namespace=~"$namespace"`}
	return spec{
		kind:  KindCluster,
		title: "Canopy · cluster overview",
		description: "Usage of every tenant namespace and the health of Canopy's " +
			"collector.",
		variables: []cogVariable{
			labelVariable("namespace", "namespace", metric(levelNamespace, cpuUsage)),
		},
		sections: []section{
			{title: "Now", panels: nowPanels(ns, levelNamespace)},
			{title: "Cluster", panels: resourcePanels(ns, levelNamespace, "", "")},
			{title: "By namespace", panels: byNamespacePanels(ns)},
			{title: "Pods", panels: podPanels(ns, levelNamespace, "namespace", "{{namespace}}")},
			{title: "Collector", panels: collectorPanels(scope{})},
		},
	}
}

// byNamespacePanels rank namespaces by what they use.
func byNamespacePanels(ns scope) []panel {
	return []panel{
		{
			title:       "CPU by namespace",
			description: "CPU cores each namespace uses.",
			unit:        unitCores, thresholds: neutral,
			queries: []query{{ns.rate(metric(levelNamespace, cpuUsage), "namespace"),
				"{{namespace}}"}},
		},
		{
			title:       "Memory working set by namespace",
			description: "Working set bytes each namespace uses.",
			unit:        unitBytes, thresholds: neutral,
			queries: []query{{ns.gauge(metric(levelNamespace, memWorkingSet), "namespace"),
				"{{namespace}}"}},
		},
		{
			title:       "Network by namespace",
			description: "Bytes per second each namespace receives and transmits.",
			unit:        unitBytesPerSec, thresholds: neutral,
			queries: []query{
				{ns.rate(metric(levelNamespace, netReceive), "namespace"), "{{namespace}} receive"},
				{ns.rate(metric(levelNamespace, netTransmit), "namespace"), "{{namespace}} transmit"},
			},
		},
		{
			title:       "Filesystem by namespace",
			description: "Bytes each namespace's containers use on the nodes' filesystems.",
			unit:        unitBytes, thresholds: neutral,
			queries: []query{{ns.gauge(metric(levelNamespace, fsUsage), "namespace"),
				"{{namespace}}"}},
		},
	}
}

// nodesSpec is the admin view of the collector's targets on each node.
func nodesSpec() spec {
	nodes := scope{matchers: `node=~"$node"`}
	return spec{
		kind:  KindNodes,
		title: "Canopy · nodes",
		description: "Canopy's collector on each node: which endpoints answer, how " +
			"fast, with how much.",
		variables: []cogVariable{labelVariable("node", "node", targetUp)},
		sections: []section{
			{title: "Now", panels: []panel{
				{
					title: "Nodes", look: lookStat, width: 6,
					description: "Nodes the collector scrapes.",
					unit:        unitCount, thresholds: neutral,
					queries: []query{{"count(" + nodes.gauge(targetUp, "node") + ")", "nodes"}},
				},
				{
					title: "Endpoints down", look: lookStat, width: 6,
					description: "Endpoints whose last scrape failed.",
					unit:        unitCount, thresholds: anyBad,
					queries: []query{{"count(" + nodes.sel(targetUp) + ") - " +
						nodes.gauge(targetUp, ""), "down"}},
				},
				{
					title: "Slowest scrape", look: lookStat, width: 6,
					description: "Longest last scrape of any endpoint, against the 15 s cycle.",
					unit:        unitSeconds, thresholds: slowScrape,
					queries: []query{{"max(" + nodes.sel(scrapeDuration) + ")", "slowest"}},
				},
				{
					title: "Scrape errors", look: lookStat, width: 6,
					description: "Failed scrapes over the dashboard's time range.",
					unit:        unitCount, thresholds: fewBad,
					queries: []query{{nodes.increase(scrapeErrors, "", rangeWindow), "errors"}},
				},
			}},
			{title: "Collector", panels: collectorPanels(nodes)},
		},
	}
}

// collectorPanels show each target's state, scrape time, errors and size.
func collectorPanels(s scope) []panel {
	return []panel{
		{
			title: "Targets up", look: lookUpTimeline, width: 24,
			description: "Whether the last scrape of each node's endpoint succeeded.",
			unit:        unitNone, thresholds: upDown,
			queries: []query{{s.sel(targetUp), "{{node}} {{endpoint}}"}},
		},
		{
			title:       "Scrape duration",
			description: "How long the last scrape of each endpoint took, against the 15 s cycle.",
			unit:        unitSeconds, thresholds: slowScrape,
			queries: []query{{"max by (node, endpoint) (" + s.sel(scrapeDuration) + ")",
				"{{node}} {{endpoint}}"}},
		},
		{
			title:       "Scrape errors",
			description: "Failed scrapes of each endpoint in each interval.",
			unit:        unitCount, thresholds: anyBad, bars: true,
			queries: []query{{s.increase(scrapeErrors, "node, endpoint", rateWindow),
				"{{node}} {{endpoint}}"}},
		},
		{
			title: "Samples per scrape",
			description: "Samples the last scrape of each endpoint returned. A drop to " +
				"zero while the target is up means the endpoint answers empty.",
			unit: unitCount, thresholds: neutral,
			queries: []query{{s.gauge(scrapeSamples, "node, endpoint"), "{{node}} {{endpoint}}"}},
		},
	}
}
