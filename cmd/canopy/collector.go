package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/collector/aggregate"
	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/quota"
	"canopy.dev/canopy/tenancy"
)

// wireCollector builds the collector when it has something to scrape: a
// cluster to discover nodes in, or a static targets file. Its figures are
// read by the usage endpoints and registered on reg (served at /metrics).
// With leading set (replicas elect a leader), every replica collects, so
// that each answers /usage, but only the leader serves the figures at
// /metrics, so that Prometheus sees each series once.
func wireCollector(cfg *Config, logger *slog.Logger, rc *rest.Config, kube kubernetes.Interface,
	reg *prometheus.Registry, leading func() bool) (tenancy.UsageReader, *part, error) {
	if !cfg.Collector {
		return nil, nil, nil
	}
	if kube == nil && cfg.ScrapeTargets == "" {
		logger.Info("collector idle: no cluster and no static targets")
		return nil, nil, nil
	}

	c, err := collector.New(collector.Config{
		Logger:             logger,
		Kubernetes:         kube,
		REST:               rc,
		Access:             discovery.Access(cfg.KubeletAccess),
		TokenFile:          cfg.KubeletTokenFile,
		CAFile:             cfg.KubeletCAFile,
		InsecureSkipVerify: cfg.KubeletInsecureTLS,
		TargetsFile:        cfg.ScrapeTargets,
		Interval:           cfg.ScrapeInterval,
		Timeout:            cfg.ScrapeTimeout,
		Shard:              discovery.Shard{Index: cfg.ShardIndex, Count: cfg.ShardCount},
		Aggregate:          aggregate.Options{NamespacePrefix: cfg.NamespacePrefix},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create collector: %w", err)
	}
	var exposed prometheus.Collector = c
	if leading != nil {
		exposed = leaderOnly{Collector: c, leading: leading}
	}
	if err := reg.Register(exposed); err != nil {
		return nil, nil, fmt.Errorf("register collector metrics: %w", err)
	}
	return c, &part{name: "collector", run: c.Run}, nil
}

// wireQuota exports the tenant namespaces' ResourceQuotas when the collector
// is on and there is a cluster to watch.
func wireQuota(cfg *Config, logger *slog.Logger, kube kubernetes.Interface,
	reg *prometheus.Registry, leading func() bool) (*part, error) {
	if !cfg.Collector || kube == nil {
		return nil, nil
	}
	q := quota.New(kube, quota.Options{NamespacePrefix: cfg.NamespacePrefix, Logger: logger})
	var exposed prometheus.Collector = q
	if leading != nil {
		exposed = leaderOnly{Collector: q, leading: leading}
	}
	if err := reg.Register(exposed); err != nil {
		return nil, fmt.Errorf("register quota metrics: %w", err)
	}
	return &part{name: "quota", run: q.Run}, nil
}

// leaderOnly serves a collector's metrics only while this replica leads.
type leaderOnly struct {
	prometheus.Collector
	leading func() bool
}

// Collect implements prometheus.Collector.
func (l leaderOnly) Collect(ch chan<- prometheus.Metric) {
	if l.leading() {
		l.Collector.Collect(ch)
	}
}
