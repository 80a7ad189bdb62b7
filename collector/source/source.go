// Package source defines what the collector's sources yield: the targets it
// scrapes, the raw answer of each endpoint in a cycle, and the pod facts that
// come from the API server or the kubelet's /pods.
//
// It is the boundary between scraping (collector/scrape, collector/discovery)
// and aggregation (collector/parse, collector/aggregate), and imports only the
// standard library, so both sides can change without touching each other.
package source

import "time"

// Kind says which endpoint a target is and so how its body is read.
type Kind string

// Endpoint kinds, as written in the static targets file.
const (
	KubeletCadvisor Kind = "kubelet-cadvisor" // kubelet /metrics/cadvisor
	KubeletResource Kind = "kubelet-resource" // kubelet /metrics/resource
	KubeletSummary  Kind = "kubelet-summary"  // kubelet /stats/summary (JSON)
	Cadvisor        Kind = "cadvisor"         // standalone cAdvisor /metrics
	KubeletPods     Kind = "kubelet-pods"     // kubelet /pods (JSON PodList)
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KubeletCadvisor, KubeletResource, KubeletSummary, Cadvisor, KubeletPods:
		return true
	}
	return false
}

// Target is one endpoint of one node.
type Target struct {
	Node               string
	URL                string
	Kind               Kind
	BearerTokenFile    string // re-read on every scrape, so rotation is seen
	CAFile             string
	InsecureSkipVerify bool
}

// Payload is one target's answer in one cycle. Body is only valid until the
// next cycle starts: the scraper may reuse its buffer.
type Payload struct {
	Target      Target
	Body        []byte
	ContentType string
	ScrapedAt   time.Time
	Duration    time.Duration
	StatusCode  int   // HTTP status of the answer; 0 when there was none
	Err         error // non-nil: the scrape failed and Body is empty
}

// Pod is what the collector needs to know about one pod.
type Pod struct {
	Namespace   string
	Name        string
	UID         string
	Node        string
	App         string // app.kubernetes.io/name, else the owning workload's name
	Phase       string // Pending, Running, Succeeded, Failed, Unknown
	HostNetwork bool
	Restarts    int64 // sum of containers' restartCount

	// Sums over the pod's application containers; zero when unset.
	CPURequestCores    float64
	CPULimitCores      float64
	MemoryRequestBytes float64
	MemoryLimitBytes   float64
}
