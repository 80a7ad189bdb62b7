package scrape_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	info "github.com/google/cadvisor/info/v1"

	"canopy.dev/canopy/collector/scrape"
	"canopy.dev/canopy/collector/source"
)

func TestReadMachine(t *testing.T) {
	machine := info.MachineInfo{
		NumCores:         6,
		NumPhysicalCores: 3,
		MemoryCapacity:   16 << 30,
		MachineID:        "3f1c0d2e",
		BootID:           "b00t",
		Topology: []info.Node{{Id: 0, Memory: 16 << 30,
			Cores: []info.Core{{Id: 0, Threads: []int{0, 1}}}}},
	}
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path != "/api/v2.1/machine" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(machine)
	}))
	t.Cleanup(srv.Close)

	target := source.Target{Node: "host-1", URL: srv.URL + "/metrics", Kind: source.Cadvisor}
	got, err := scrape.ReadMachine(context.Background(), target)
	if err != nil {
		t.Fatalf("read machine (paths %v): %v", paths, err)
	}
	want := scrape.Machine{Node: "host-1", Cores: 6, MemoryCapacityBytes: 16 << 30,
		MachineID: "3f1c0d2e", BootID: "b00t"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestReadMachineFailures(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no machine here", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := scrape.ReadMachine(ctx,
		source.Target{Node: "h", URL: hang.URL + "/metrics", Kind: source.Cadvisor})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hung cAdvisor: %v, want a deadline error", err)
	}

	_, err = scrape.ReadMachine(context.Background(),
		source.Target{Node: "h", URL: broken.URL + "/metrics", Kind: source.Cadvisor})
	if err == nil {
		t.Error("a 500 answer gave machine facts")
	}

	_, err = scrape.ReadMachine(context.Background(),
		source.Target{Node: "h", URL: broken.URL, Kind: source.KubeletCadvisor})
	if !errors.Is(err, scrape.ErrNotCadvisor) {
		t.Errorf("kubelet target: %v, want ErrNotCadvisor", err)
	}
}
