// Package discovery finds what the collector scrapes and the pod facts it
// joins to the samples: kubelet targets from a Node informer or from the
// static targets file (CANOPY_SCRAPE_TARGETS), and pods from a Pod informer or
// from the kubelet's /pods.
//
// It owns target lists, sharding and pod conversion. It never talks to a
// kubelet (collector/scrape does) and never reads samples (collector/parse).
package discovery

import (
	"errors"
	"fmt"
	"hash/fnv"
)

// ErrInvalidShard means a shard index is outside [0, count).
var ErrInvalidShard = errors.New("invalid shard")

// Shard selects the nodes one collector replica scrapes: node n belongs to
// shard fnv32a(n) % Count. The zero value (Count 0) and Count 1 own every
// node.
type Shard struct {
	Index int
	Count int
}

// Validate checks that the index lies inside the count.
func (s Shard) Validate() error {
	if s.Count < 0 || (s.Count > 0 && (s.Index < 0 || s.Index >= s.Count)) ||
		(s.Count == 0 && s.Index != 0) {
		return fmt.Errorf("check shard index=%d count=%d: %w", s.Index, s.Count, ErrInvalidShard)
	}
	return nil
}

// Owns reports whether node belongs to this shard. Pods not yet scheduled
// (node "") belong to shard 0 only, so they are counted exactly once.
func (s Shard) Owns(node string) bool {
	if s.Count <= 1 {
		return true
	}
	if node == "" {
		return s.Index == 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(node))
	return int(h.Sum32()%uint32(s.Count)) == s.Index
}
