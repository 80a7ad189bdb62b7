package reconcile

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the reconciler's own figures, served with Canopy's others.
type metrics struct {
	passes   *prometheus.CounterVec
	duration prometheus.Histogram
	writes   *prometheus.CounterVec
	leader   prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_reconcile_passes_total",
			Help: "Reconcile passes over one project, by result (ok or error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "canopy_reconcile_pass_duration_seconds",
			Help:    "Time one reconcile pass over one project took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "canopy_reconcile_writes_total",
			Help: "Writes the reconciler made to the Kubernetes API, by kind and verb.",
		}, []string{"kind", "verb"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "canopy_reconcile_leader",
			Help: "1 while this replica leads and reconciles, else 0.",
		}),
	}
}

// register adds the metrics to reg; a nil reg keeps them unregistered.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.passes, m.duration, m.writes, m.leader} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("register reconciler metrics: %w", err)
	}
	return nil
}

func (m *metrics) wrote(kind, verb string) {
	m.writes.WithLabelValues(kind, verb).Inc()
}
