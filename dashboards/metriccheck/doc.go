// Package metriccheck holds one test: every canopy_* metric the dashboards
// query is one the collector exports, as its descriptors name them. It lives
// apart from package dashboards so that the dashboards build and test without
// the collector.
package metriccheck
