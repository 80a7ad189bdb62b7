package parse

import (
	"encoding/json"
	"errors"
	"fmt"

	stats "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// ErrSummary is returned for a /stats/summary body that is not a summary.
var ErrSummary = errors.New("invalid stats summary")

// Summary decodes a kubelet /stats/summary body. A body that is not JSON,
// or whose node has no name, is refused with an error wrapping ErrSummary.
func Summary(body []byte) (*stats.Summary, error) {
	var s stats.Summary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("decode stats summary: %w: %w", ErrSummary, err)
	}
	if s.Node.NodeName == "" {
		return nil, fmt.Errorf("decode stats summary: node name missing: %w", ErrSummary)
	}
	return &s, nil
}

// Interfaces returns the interfaces of a pod's network figures, each once.
// The top-level figures repeat the default interface, which is also in the
// interfaces list when the kubelet fills it, so they are used only when the
// list is empty.
func Interfaces(n *stats.NetworkStats) []stats.InterfaceStats {
	if n == nil {
		return nil
	}
	if len(n.Interfaces) > 0 {
		return n.Interfaces
	}
	if n.RxBytes == nil && n.TxBytes == nil {
		return nil
	}
	return []stats.InterfaceStats{n.InterfaceStats}
}
