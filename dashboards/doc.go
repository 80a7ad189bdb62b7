// Package dashboards owns Canopy's Grafana dashboards, built in Go with the
// Grafana Foundation SDK: the admin dashboards (cluster overview, nodes) for
// the main organization and the project dashboards (namespace overview, pods,
// apps) for each project's organization. It renders them as JSON for GitOps
// and file provisioning.
//
// Every query reads only the metrics Canopy serves (canopy_*). Project
// dashboards carry no namespace matcher: their data source is the project's
// tenant query proxy, which forces every selector to the project's namespace.
// Admin dashboards select namespaces with a namespace variable.
//
// The package builds dashboards and nothing else: talking to Grafana lives in
// dashboards/grafanasync, and it must not read the store or the collector.
package dashboards
