package main

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLeaderOnlyServesWhileLeading(t *testing.T) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "canopy_test_gauge", Help: "A test."})
	g.Set(7)
	lead := false
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(leaderOnly{Collector: g, leading: func() bool { return lead }})

	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("follower served %d series (err %v), want none", n, err)
	}
	lead = true
	if n, err := testutil.GatherAndCount(reg, "canopy_test_gauge"); err != nil || n != 1 {
		t.Errorf("leader served %d series (err %v), want 1", n, err)
	}
}
