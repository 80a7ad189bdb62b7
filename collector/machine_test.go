package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	info "github.com/google/cadvisor/info/v1"
	"github.com/prometheus/client_golang/prometheus"

	"canopy.dev/canopy/collector"
	"canopy.dev/canopy/internal/testenv"
)

// TestStandaloneCadvisorMachineFacts: a standalone cAdvisor host's cores and
// memory come from its REST API. (The fixture's containers carry no
// Kubernetes labels, so its metrics add nothing to any namespace.)
func TestStandaloneCadvisorMachineFacts(t *testing.T) {
	body := testenv.Fixture(t, "cadvisor-standalone-fake-docker.prometheus_metrics.txt")
	machine := info.MachineInfo{NumCores: 12, MemoryCapacity: 64 << 30, MachineID: "m1"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write(body)
		case "/api/v2.1/machine":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(machine)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	path := targetsFile(t, fmt.Sprintf(`
targets:
  - {node: host-1, url: %s/metrics, kind: cadvisor}
`, srv.URL))
	c, err := collector.New(collector.Config{TargetsFile: path, Logger: testLogger(t),
		Interval: 2 * time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	if _, err := c.Cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(c.Machines()) == 1 })
	if got := gauge(t, reg, "canopy_node_cpu_cores", "node", "host-1"); got != 12 {
		t.Errorf("cores = %g, want 12", got)
	}
	if got := gauge(t, reg, "canopy_node_memory_capacity_bytes", "node",
		"host-1"); got != 64<<30 {
		t.Errorf("memory capacity = %g, want %d", got, int64(64<<30))
	}
}
