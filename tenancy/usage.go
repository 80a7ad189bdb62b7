package tenancy

import (
	"context"
	"time"
)

// Resources is the usage of one namespace, app, pod or node at one moment.
// Totals are monotonic counters as Canopy serves them; per-second figures are
// rates over the last two collector cycles (zero until there are two).
type Resources struct {
	CPUCores                      float64        `json:"cpuCores"`
	CPUSecondsTotal               float64        `json:"cpuSecondsTotal"`
	MemoryWorkingSetBytes         float64        `json:"memoryWorkingSetBytes"`
	MemoryRSSBytes                float64        `json:"memoryRssBytes"`
	NetworkReceiveBytesTotal      float64        `json:"networkReceiveBytesTotal"`
	NetworkTransmitBytesTotal     float64        `json:"networkTransmitBytesTotal"`
	NetworkReceiveBytesPerSecond  float64        `json:"networkReceiveBytesPerSecond"`
	NetworkTransmitBytesPerSecond float64        `json:"networkTransmitBytesPerSecond"`
	FilesystemUsageBytes          float64        `json:"filesystemUsageBytes"`
	PodsByPhase                   map[string]int `json:"podsByPhase"`
	ContainerRestartsTotal        float64        `json:"containerRestartsTotal"`
	OOMEventsTotal                float64        `json:"oomEventsTotal"`
	CPURequestsCores              float64        `json:"cpuRequestsCores"`
	CPULimitsCores                float64        `json:"cpuLimitsCores"`
	MemoryRequestsBytes           float64        `json:"memoryRequestsBytes"`
	MemoryLimitsBytes             float64        `json:"memoryLimitsBytes"`
}

// NamespaceUsage is a namespace's usage, in all and per app.
type NamespaceUsage struct {
	Namespace  string               `json:"namespace"`
	ObservedAt time.Time            `json:"observedAt"`
	Total      Resources            `json:"total"`
	Apps       map[string]Resources `json:"apps"`
}

// NodeUsage is what the collector saw of one node.
type NodeUsage struct {
	Node       string          `json:"node"`
	Up         bool            `json:"up"`
	Endpoints  map[string]bool `json:"endpoints"` // endpoint kind → last scrape succeeded
	Total      Resources       `json:"total"`
	ObservedAt time.Time       `json:"observedAt"`
}

// ClusterUsage is every namespace and node, for admins.
type ClusterUsage struct {
	ObservedAt time.Time        `json:"observedAt"`
	Namespaces []NamespaceUsage `json:"namespaces"`
	Nodes      []NodeUsage      `json:"nodes"`
}

// UsageReader gives the collector's latest figures. The collector implements it.
type UsageReader interface {
	// NamespaceUsage returns false if the collector has seen nothing of ns.
	NamespaceUsage(ns string) (NamespaceUsage, bool)
	// ClusterUsage returns every namespace and node.
	ClusterUsage() ClusterUsage
}

// Notifier is told when a user changed a project or one of its apps, so the
// reconciler and the Grafana sync act at once instead of at the next resync.
type Notifier interface {
	ProjectChanged(projectID string)
}

type namespaceKey struct{}

// NewContextWithNamespace returns ctx carrying the namespace the caller is
// limited to. Only the API's auth layer sets it, from the authenticated token.
func NewContextWithNamespace(ctx context.Context, ns string) context.Context {
	return context.WithValue(ctx, namespaceKey{}, ns)
}

// NamespaceFromContext returns the namespace set by NewContextWithNamespace.
func NamespaceFromContext(ctx context.Context) (string, bool) {
	ns, ok := ctx.Value(namespaceKey{}).(string)
	return ns, ok && ns != ""
}
