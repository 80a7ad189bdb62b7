// Package quota exports the ResourceQuota of each tenant namespace as
// Prometheus gauges (canopy_namespace_quota_*), so that dashboards can draw
// usage against the quota as well as against requests and limits.
//
// It owns a ResourceQuota informer that sees only the quotas Canopy's
// reconciler manages (label app.kubernetes.io/managed-by=canopy) and the
// metrics built from them. It never writes to the cluster; the quotas
// themselves belong to tenancy/reconcile.
package quota

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// ManagedSelector selects the ResourceQuotas Canopy manages; others, set by
// hand or by other tools, are not exported.
const ManagedSelector = "app.kubernetes.io/managed-by=canopy"

// managed is ManagedSelector parsed. The informer lists only those quotas;
// Collect checks again so that a lister filled otherwise cannot leak others.
var managed = labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "canopy"})

// DefaultNamespacePrefix is cut from a namespace to name its project.
const DefaultNamespacePrefix = "canopy-"

// ErrNotSynced means the informer stopped before it listed the quotas once.
var ErrNotSynced = errors.New("resource quota informer did not sync")

// Options configure a Collector. The zero value is usable.
type Options struct {
	// NamespacePrefix is cut from a namespace to name its project (label
	// project). Empty: DefaultNamespacePrefix.
	NamespacePrefix string
	// Resync is the informer's resync period. Zero: none, watching suffices.
	Resync time.Duration
	// Logger receives the start and sync messages. Nil: slog.Default().
	Logger *slog.Logger
}

// family is one exported gauge and the quota resources it reads.
type family struct {
	name string
	help string
	// resources are equivalent quota resources; the tightest one set wins
	// (a quota's "cpu" is the same limit as "requests.cpu").
	resources []corev1.ResourceName
}

// families is the one table that builds the Descs, Collect and MetricNames.
var families = []family{
	{"canopy_namespace_quota_cpu_requests_cores",
		"CPU cores the namespace's Canopy ResourceQuota allows its pods to request.",
		[]corev1.ResourceName{corev1.ResourceRequestsCPU, corev1.ResourceCPU}},
	{"canopy_namespace_quota_cpu_limits_cores",
		"Sum of CPU limits in cores the namespace's Canopy ResourceQuota allows.",
		[]corev1.ResourceName{corev1.ResourceLimitsCPU}},
	{"canopy_namespace_quota_memory_requests_bytes",
		"Memory bytes the namespace's Canopy ResourceQuota allows its pods to request.",
		[]corev1.ResourceName{corev1.ResourceRequestsMemory, corev1.ResourceMemory}},
	{"canopy_namespace_quota_memory_limits_bytes",
		"Sum of memory limits in bytes the namespace's Canopy ResourceQuota allows.",
		[]corev1.ResourceName{corev1.ResourceLimitsMemory}},
	{"canopy_namespace_quota_pods",
		"Pods the namespace's Canopy ResourceQuota allows.",
		[]corev1.ResourceName{corev1.ResourcePods, "count/pods"}},
}

// labelNames are the labels of every family, in the order Collect fills them.
var labelNames = []string{"namespace", "project"}

// descs are the families' Descs, in the order of families.
var descs = buildDescs()

func buildDescs() []*prometheus.Desc {
	out := make([]*prometheus.Desc, len(families))
	for i, f := range families {
		out[i] = prometheus.NewDesc(f.name, f.help, labelNames, nil)
	}
	return out
}

// MetricNames returns the name of every metric family the Collector
// exposes, sorted, from the same table that builds its Descs.
func MetricNames() []string {
	names := make([]string, len(families))
	for i, f := range families {
		names[i] = f.name
	}
	slices.Sort(names)
	return names
}

// Collector exports the hard limits of Canopy's ResourceQuotas per
// namespace. It implements prometheus.Collector; Run feeds it.
type Collector struct {
	factory informers.SharedInformerFactory
	lister  corelisters.ResourceQuotaLister
	synced  cache.InformerSynced
	prefix  string
	log     *slog.Logger
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a Collector watching client's ResourceQuotas labelled
// ManagedSelector in every namespace. Nothing is watched until Run.
func New(client kubernetes.Interface, opts Options) *Collector {
	factory := informers.NewSharedInformerFactoryWithOptions(client, opts.Resync,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = ManagedSelector
		}))
	informer := factory.Core().V1().ResourceQuotas()
	// Managed fields are the bulk of a stored quota and are never read.
	// SetTransform fails only on a started informer, and this one is new.
	_ = informer.Informer().SetTransform(stripManagedFields)
	c := newCollector(informer.Lister(), opts)
	c.factory, c.synced = factory, informer.Informer().HasSynced
	return c
}

// stripManagedFields drops an object's managed fields before it is cached.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// newCollector returns a Collector reading lister, for tests and benchmarks
// that fill an indexer themselves.
func newCollector(lister corelisters.ResourceQuotaLister, opts Options) *Collector {
	return &Collector{
		lister: lister,
		synced: func() bool { return true },
		prefix: cmp.Or(opts.NamespacePrefix, DefaultNamespacePrefix),
		log:    cmp.Or(opts.Logger, slog.Default()),
	}
}

// Run starts the informer, waits for its first list and then until ctx is
// done. It returns nil when ctx ends, and ErrNotSynced if the informer
// stopped before syncing for another reason.
func (c *Collector) Run(ctx context.Context) error {
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("start quota collector: %w", ErrNotSynced)
	}
	c.log.Info("quota collector started", "selector", ManagedSelector)
	<-ctx.Done()
	return nil
}

// HasSynced reports whether the informer has listed the quotas once.
func (c *Collector) HasSynced() bool { return c.synced() }

// Describe sends the Desc of every family.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect sends, for every namespace with a Canopy quota, each family whose
// resource one of the namespace's Canopy quotas sets. A family no quota
// sets has no series: the namespace is not limited on it.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	quotas, err := c.lister.List(managed)
	if err != nil {
		c.log.Error("list resource quotas", "error", err)
		return
	}
	for ns, hard := range tightest(quotas) {
		values := []string{ns, strings.TrimPrefix(ns, c.prefix)}
		for i, v := range hard {
			if v.set {
				ch <- prometheus.MustNewConstMetric(descs[i], prometheus.GaugeValue,
					v.value, values...)
			}
		}
	}
}

// limit is a family's value in a namespace, if any quota sets it.
type limit struct {
	value float64
	set   bool
}

// tightest returns, per namespace, each family's smallest hard limit over
// the namespace's quotas, in the order of families. Every quota is enforced
// on its own, so the smallest is the one the namespace meets first.
func tightest(quotas []*corev1.ResourceQuota) map[string][]limit {
	out := make(map[string][]limit)
	for _, q := range quotas {
		lims, ok := out[q.Namespace]
		if !ok {
			lims = make([]limit, len(families))
			out[q.Namespace] = lims
		}
		hard := hardOf(q)
		for i, f := range families {
			for _, r := range f.resources {
				qty, ok := hard[r]
				if !ok {
					continue
				}
				if v := qty.AsApproximateFloat64(); !lims[i].set || v < lims[i].value {
					lims[i] = limit{value: v, set: true}
				}
			}
		}
	}
	return out
}

// hardOf is the quota's enforced hard limits: status.hard, which the quota
// controller copies from spec.hard once it has admitted the change, or
// spec.hard while status is still empty (a new quota, or a cluster without
// the controller, such as a bare API server).
func hardOf(q *corev1.ResourceQuota) corev1.ResourceList {
	if len(q.Status.Hard) > 0 {
		return q.Status.Hard
	}
	return q.Spec.Hard
}
