package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// nodeMark stands for the node's number in the body template.
const nodeMark = "\x00"

// namespaces the synthetic pods are spread over.
const namespaces = 8

// containerFamilies are written for every cgroup of a pod (pod cgroup,
// sandbox, application container): what a kubelet's /metrics/cadvisor
// carries per container, less the per-device block I/O series.
var containerFamilies = []struct{ name, typ string }{
	{"container_cpu_usage_seconds_total", "counter"},
	{"container_cpu_user_seconds_total", "counter"},
	{"container_cpu_system_seconds_total", "counter"},
	{"container_cpu_cfs_periods_total", "counter"},
	{"container_cpu_cfs_throttled_periods_total", "counter"},
	{"container_memory_working_set_bytes", "gauge"},
	{"container_memory_rss", "gauge"},
	{"container_memory_cache", "gauge"},
	{"container_memory_usage_bytes", "gauge"},
	{"container_memory_swap", "gauge"},
	{"container_memory_mapped_file", "gauge"},
	{"container_memory_failcnt", "counter"},
	{"container_fs_usage_bytes", "gauge"},
	{"container_fs_reads_bytes_total", "counter"},
	{"container_fs_writes_bytes_total", "counter"},
	{"container_oom_events_total", "counter"},
	{"container_spec_memory_limit_bytes", "gauge"},
	{"container_spec_cpu_shares", "gauge"},
	{"container_last_seen", "gauge"},
	{"container_start_time_seconds", "gauge"},
}

// networkFamilies are written for each pod's sandbox, on eth0.
var networkFamilies = []string{
	"container_network_receive_bytes_total", "container_network_receive_packets_total",
	"container_network_receive_errors_total", "container_network_receive_packets_dropped_total",
	"container_network_transmit_bytes_total", "container_network_transmit_packets_total",
	"container_network_transmit_errors_total", "container_network_transmit_packets_dropped_total",
}

// bodyTemplate writes one node's /metrics/cadvisor for pods pods, with
// nodeMark where the node's number goes (pod names and cgroup ids).
func bodyTemplate(pods int) string {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var b strings.Builder
	cgroup := func(i, c int) (container, image, id string) {
		base := fmt.Sprintf("/kubepods/burstable/pod%s-%d", nodeMark, i)
		switch c {
		case 0:
			return "", "", base
		case 1:
			return "", "registry.k8s.io/pause:3.10", base + "/sandbox"
		}
		return "app", "example.org/app:1.0", base + "/app"
	}
	labels := func(i, c int, extra string) string {
		container, image, id := cgroup(i, c)
		return fmt.Sprintf(`{container=%q,id=%q,image=%q%s,name="k8s_%d",namespace="tenant-%d",`+
			`pod="app%d-%s-%d"}`, container, id, image, extra, c, i%namespaces, i%namespaces,
			nodeMark, i)
	}
	for f, fam := range containerFamilies {
		fmt.Fprintf(&b, "# HELP %s synthetic\n# TYPE %s %s\n", fam.name, fam.name, fam.typ)
		for i := range pods {
			for c := range 3 {
				extra := ""
				if strings.HasPrefix(fam.name, "container_fs_") {
					extra = `,device="/dev/nvme0n1p1"`
				}
				v := float64(i*31+c*7+f) * 1.5e3
				if fam.name == "container_start_time_seconds" {
					v = 1.7e9 + float64(i)
				}
				fmt.Fprintf(&b, "%s%s %g %s\n", fam.name, labels(i, c, extra), v, ts)
			}
		}
	}
	for f, name := range networkFamilies {
		fmt.Fprintf(&b, "# HELP %s synthetic\n# TYPE %s counter\n", name, name)
		for i := range pods {
			fmt.Fprintf(&b, "%s%s %g %s\n", name, labels(i, 1, `,interface="eth0"`),
				float64(i*1009+f)*1e3, ts)
		}
	}
	return b.String()
}

// nodeServer serves /node/N/metrics/cadvisor for any N from the template.
func nodeServer(template string) http.Handler {
	parts := strings.Split(template, nodeMark)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/node/")
		node, _, _ := strings.Cut(rest, "/")
		if !ok || node == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriterSize(w, 256<<10)
		for i, p := range parts {
			if i > 0 {
				_, _ = bw.WriteString(node)
			}
			_, _ = bw.WriteString(p)
		}
		_ = bw.Flush()
	})
}

// scale serves o.nodes synthetic nodes from o.servers stand-ins and runs
// the collector child for o.cycles cycles.
func scale(ctx context.Context, o options) error {
	template := bodyTemplate(o.pods)
	bodySize := len(template) - strings.Count(template, nodeMark) +
		strings.Count(template, nodeMark)*len(strconv.Itoa(o.nodes))
	handler := nodeServer(template)
	var addrs []string
	for range o.servers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = s.Serve(l) }()
		defer s.Close()
		addrs = append(addrs, l.Addr().String())
	}

	dir, err := os.MkdirTemp("", "benchcollector-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var targets strings.Builder
	targets.WriteString("targets:\n")
	for n := range o.nodes {
		fmt.Fprintf(&targets, "  - {node: node-%04d, url: http://%s/node/%d/metrics/cadvisor, "+
			"kind: kubelet-cadvisor}\n", n, addrs[n%len(addrs)], n)
	}
	path := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(path, []byte(targets.String()), 0o600); err != nil {
		return fmt.Errorf("write targets: %w", err)
	}

	fmt.Printf("scale: %d nodes x %d pods (%d namespaces), %.2f MB per node body, "+
		"%.2f GB per cycle, %d stand-in servers\n", o.nodes, o.pods, namespaces,
		float64(bodySize)/1e6, float64(bodySize)*float64(o.nodes)/1e9, o.servers)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "-mode", "child", "-targets-file", path,
		"-interval", "15s", "-cycles", strconv.Itoa(o.cycles), "-heapprofile", o.heapProfile)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	started := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("run collector child: %w: %s", err, errOut.String())
	}
	u := usageOf(cmd, started)

	var rep cycleReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return fmt.Errorf("read child report %q: %w", out.String(), err)
	}
	steady := slices.Clone(rep.Cycles[min(1, len(rep.Cycles)-1):])
	slices.Sort(steady)
	fmt.Printf("  cycles (s): %s\n", formatSeconds(rep.Cycles))
	fmt.Printf("  steady-state cycle: median %.2f s, max %.2f s (goal < 15 s on 2 cores, "+
		"stand-ins on the same cores)\n", steady[len(steady)/2], steady[len(steady)-1])
	fmt.Printf("  last cycle: %d payloads, %d failed, %d samples read, %d pods\n",
		rep.Payloads, rep.Failed, rep.Samples, rep.Pods)
	fmt.Printf("  collector process: %s\n", u)
	return nil
}

func formatSeconds(s []float64) string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(out, " ")
}

// execOutput runs a command and returns its combined output.
func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
