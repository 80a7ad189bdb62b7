package collector_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/internal/testenv"
)

// BenchmarkCycleLargeFixture runs whole cycles over 20 stand-in kubelets
// serving the 2.1 MB fixture: scrape, parse, aggregate. MB/s counts the
// bodies read.
func BenchmarkCycleLargeFixture(b *testing.B) {
	body := testenv.Fixture(b, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
	var targets strings.Builder
	targets.WriteString("targets:\n")
	const nodes = 20
	for i := range nodes {
		k := serveBody(b, "/metrics/cadvisor", body)
		fmt.Fprintf(&targets, "  - {node: n%d, url: %s/metrics/cadvisor, kind: kubelet-cadvisor}\n",
			i, k.URL)
	}
	c, err := collector.New(collector.Config{TargetsFile: targetsFile(b, targets.String())})
	if err != nil {
		b.Fatal(err)
	}

	b.SetBytes(int64(nodes * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		st, err := c.Cycle(context.Background())
		if err != nil || st.Failed > 0 {
			b.Fatalf("cycle: %v, %d failed", err, st.Failed)
		}
	}
}
