package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"canopy.dev/canopy/api"
	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/dashboards"
	"canopy.dev/canopy/dashboards/grafanasync"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/promproxy"
	"canopy.dev/canopy/tenancy/reconcile"
)

// part is a background loop of serve: the collector, the reconciler or the
// Grafana sync.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// parts is what serve runs: the HTTP handler and the background loops.
type parts struct {
	handler    http.Handler
	background []part
}

// notifiers fans a change out to every part that wants to hear it.
type notifiers []tenancy.Notifier

// ProjectChanged implements tenancy.Notifier.
func (ns notifiers) ProjectChanged(id string) {
	for _, n := range ns {
		n.ProjectChanged(id)
	}
}

// wire builds every part that the configuration switches on.
func wire(ctx context.Context, cfg *Config, logger *slog.Logger, store tenancy.Store,
	reg *prometheus.Registry) (*parts, error) {
	var p parts
	var notify notifiers
	var leading func() bool // set when replicas elect a leader

	// The cluster, if there is one.
	rest, source, err := kubeConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	var kube kubernetes.Interface
	if rest != nil {
		rest.UserAgent = "canopy"
		if kube, err = kubernetes.NewForConfig(rest); err != nil {
			return nil, fmt.Errorf("create kubernetes client: %w", err)
		}
		logger.Info("cluster configured", "source", source, "host", rest.Host)
	} else {
		logger.Warn("no cluster configured: projects stay provisioning; " +
			"set --kubeconfig or run in a cluster")
	}

	// The reconciler, elected among replicas.
	if kube != nil && cfg.Reconciler {
		hostname, _ := os.Hostname()
		r, err := reconcile.New(reconcile.Config{
			Store:               store,
			Client:              kube,
			Logger:              logger,
			NamespacePrefix:     cfg.NamespacePrefix,
			ResyncInterval:      cfg.ResyncInterval,
			IngressNamespace:    cfg.IngressNamespace,
			MonitoringNamespace: cfg.MonitoringNamespace,
			Registerer:          reg,
			LeaderElection: reconcile.LeaderElection{
				Enabled:   cfg.LeaderElection,
				Namespace: cfg.LeaderElectionNS,
				Name:      "canopy-reconciler",
				Identity:  hostname,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("create reconciler: %w", err)
		}
		notify = append(notify, r)
		p.background = append(p.background, part{"reconciler", r.Run})
		if cfg.LeaderElection {
			leading = r.Leading
		}
	}

	// The Grafana sync.
	if cfg.GrafanaURL != "" && cfg.Reconciler {
		s, err := grafanasync.New(grafanasync.Config{
			URL:            cfg.GrafanaURL,
			User:           cfg.GrafanaUser,
			Password:       cfg.GrafanaPassword,
			ExternalURL:    cfg.ExternalURL,
			Store:          store,
			Logger:         logger,
			ResyncInterval: cfg.ResyncInterval,
		})
		if err != nil {
			return nil, fmt.Errorf("create grafana sync: %w", err)
		}
		notify = append(notify, s)
		p.background = append(p.background, part{"grafana-sync", s.Run})
	}

	// The collector.
	usage, collectorPart, err := wireCollector(cfg, logger, rest, kube, reg, leading)
	if err != nil {
		return nil, err
	}
	if collectorPart != nil {
		p.background = append(p.background, *collectorPart)
	}
	quotaPart, err := wireQuota(cfg, logger, kube, reg, leading)
	if err != nil {
		return nil, err
	}
	if quotaPart != nil {
		p.background = append(p.background, *quotaPart)
	}

	// The tenant query proxy.
	var proxy http.Handler
	if cfg.PrometheusURL != "" {
		u, _ := url.Parse(cfg.PrometheusURL) // checked by LoadConfig
		if proxy, err = promproxy.New(u, promproxy.Options{Logger: logger, Registerer: reg}); err != nil {
			return nil, fmt.Errorf("create query proxy: %w", err)
		}
	}

	// The API, last: it needs everything above.
	keys, err := auth.LoadOrCreateSigningKey(ctx, store, cfg.JWTKeyFile)
	if err != nil {
		return nil, err
	}
	apiCfg := api.Config{
		Store:           store,
		Keys:            keys,
		Logger:          logger,
		AdminEmails:     cfg.AdminEmails,
		NamespacePrefix: cfg.NamespacePrefix,
		ReservedNamespaces: []string{cfg.LeaderElectionNS, cfg.IngressNamespace,
			cfg.MonitoringNamespace},
		ExternalURL:       cfg.ExternalURL,
		ClusterConfigured: kube != nil,
		Usage:             usage,
		PromProxy:         proxy,
		Dashboards:        dashboardLinks(cfg.GrafanaURL),
		LoginLimits: api.LoginLimits{
			PerAddress:      cfg.LoginRatePerAddress,
			AddressPeriod:   time.Minute,
			FailuresPerUser: cfg.LoginFailuresPerAccount,
			FailuresPeriod:  15 * time.Minute,
		},
		Registerer: reg,
		Gatherer:   reg,
	}
	if len(notify) > 0 {
		apiCfg.Notifier = notify
	}
	if p.handler, err = api.New(apiCfg); err != nil {
		return nil, fmt.Errorf("create api: %w", err)
	}
	return &p, nil
}

// dashboardLinks lists a project's dashboards in Grafana, or none without Grafana.
func dashboardLinks(grafanaURL string) func(p *tenancy.Project) []api.Dashboard {
	if grafanaURL == "" {
		return nil
	}
	return func(p *tenancy.Project) []api.Dashboard {
		ds, err := dashboards.Project(p.Name)
		if err != nil {
			return nil
		}
		out := make([]api.Dashboard, 0, len(ds))
		for _, d := range ds {
			out = append(out, api.Dashboard{Title: d.Title, URL: grafanaURL + "/d/" + d.UID})
		}
		return out
	}
}
