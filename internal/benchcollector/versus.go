package main

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// recordingRules are the four per-namespace rules Prometheus evaluates: the
// kubernetes-mixin expressions for working set, RSS, CPU and network.
const recordingRules = `groups:
  - name: canopy-bench
    rules:
      - record: namespace:container_memory_working_set_bytes:sum
        expr: sum by (namespace) (container_memory_working_set_bytes{container!="", image!=""})
      - record: namespace:container_memory_rss:sum
        expr: sum by (namespace) (container_memory_rss{container!="", image!=""})
      - record: namespace:container_cpu_usage_seconds:sum_rate
        expr: >-
          sum by (namespace) (rate(container_cpu_usage_seconds_total{container!="",
          image!=""}[1m]))
      - record: namespace:container_network_receive_bytes:sum_rate
        expr: sum by (namespace) (rate(container_network_receive_bytes_total{namespace!=""}[1m]))
`

// prom3Path is where a Prometheus 3 built from the module proxy is looked
// for by default; the goal is judged against the newest Prometheus.
const prom3Path = "/tmp/prom3/prometheus"

// side is one process measured in versus: its name and each run's usage.
type side struct {
	name string
	runs []usage
}

// median returns the run with the median CPU seconds and the median peak
// RSS, which may come from different runs.
func (s side) median() usage {
	cpu := make([]time.Duration, len(s.runs))
	rss := make([]int64, len(s.runs))
	for i, u := range s.runs {
		cpu[i], rss[i] = u.cpu, u.peakRSS
	}
	slices.Sort(cpu)
	slices.Sort(rss)
	return usage{cpu: cpu[len(cpu)/2], peakRSS: rss[len(rss)/2], wall: s.runs[0].wall}
}

// versus runs the collector, then each Prometheus, over the same stand-ins
// for the same wall time, one after the other so they do not share the two
// cores, o.runs times, and prints what each cost and the ratios.
func versus(ctx context.Context, o options) error {
	body, err := os.ReadFile(o.fixture)
	if err != nil {
		return fmt.Errorf("read fixture: %w", err)
	}
	addrs, closeAll, err := standIns(o.targets, body)
	if err != nil {
		return err
	}
	defer closeAll()
	dir, err := os.MkdirTemp("", "benchcollector-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	bins := binaries(o.prometheus)
	o.runs = max(o.runs, 1)
	fmt.Printf("versus: %d stand-in kubelets serving %s (%.1f MB),\n"+
		"  every %s, for %s each, one after the other, %d run(s)\n",
		o.targets, filepath.Base(o.fixture), float64(len(body))/1e6, o.interval, o.duration,
		o.runs)
	if !slices.Contains(bins, prom3Path) && len(bins) > 0 {
		fmt.Printf("  no Prometheus 3 at %s: comparing against %s only\n", prom3Path,
			strings.Join(bins, ", "))
	}

	canopy := side{name: "canopy collector"}
	serve := side{name: "canopy serve (whole binary)"}
	proms := make([]side, len(bins))
	for run := range o.runs {
		u, err := runCanopy(ctx, o, dir, addrs)
		if err != nil {
			return err
		}
		canopy.runs = append(canopy.runs, u)
		fmt.Printf("  run %d %-28s %s\n", run+1, canopy.name, u)
		if o.canopyBin != "" {
			u, err := runServe(ctx, o, dir, addrs)
			if err != nil {
				return err
			}
			serve.runs = append(serve.runs, u)
			fmt.Printf("  run %d %-28s %s\n", run+1, serve.name, u)
		}
		for i, bin := range bins {
			u, version, err := runPrometheus(ctx, o, dir, bin, addrs)
			if err != nil {
				return err
			}
			proms[i].name = version
			proms[i].runs = append(proms[i].runs, u)
			fmt.Printf("  run %d %-28s %s\n", run+1, version, u)
		}
	}
	summarize(canopy, proms)
	if len(serve.runs) > 0 {
		summarize(serve, proms)
	}
	return nil
}

// summarize prints the medians and Canopy's ratios to each Prometheus. The
// goals are judged against the last binary, the newest Prometheus.
func summarize(canopy side, proms []side) {
	c := canopy.median()
	fmt.Printf("\nsummary (median of %d run(s)):\n", len(canopy.runs))
	fmt.Printf("  %-30s %s\n", canopy.name, c)
	for _, p := range proms {
		fmt.Printf("  %-30s %s\n", p.name, p.median())
	}
	if len(proms) == 0 {
		fmt.Println("  no Prometheus binary found: no ratios")
		return
	}
	fmt.Println("goals: Canopy at most 1/5 of Prometheus's CPU and 1/10 of its peak RSS")
	for i, p := range proms {
		m := p.median()
		cpu := c.cpu.Seconds() / m.cpu.Seconds()
		rss := float64(c.peakRSS) / float64(m.peakRSS)
		fmt.Printf("  vs %-27s CPU %5.1f%% (1/%.1f)  peak RSS %5.1f%% (1/%.1f)\n", p.name,
			100*cpu, 1/cpu, 100*rss, 1/rss)
		if i == len(proms)-1 {
			fmt.Printf("  against %s: CPU goal %s, memory goal %s\n", p.name,
				verdict(cpu <= 1.0/5), verdict(rss <= 1.0/10))
		}
	}
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT met"
}

// standIns starts n kubelets on 127.0.0.1 serving body at /metrics/cadvisor.
func standIns(n int, body []byte) ([]string, func(), error) {
	var addrs []string
	var servers []*http.Server
	closeAll := func() {
		for _, s := range servers {
			_ = s.Close()
		}
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	})
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
		s := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = s.Serve(l) }()
		servers = append(servers, s)
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, closeAll, nil
}

// runCanopy runs the collector child over the stand-ins for o.duration.
func runCanopy(ctx context.Context, o options, dir string, addrs []string) (usage, error) {
	path, err := writeTargets(dir, addrs)
	if err != nil {
		return usage{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return usage{}, fmt.Errorf("find own binary: %w", err)
	}
	log, err := os.Create(filepath.Join(dir, "canopy.log"))
	if err != nil {
		return usage{}, fmt.Errorf("create log: %w", err)
	}
	defer log.Close()

	listen := freeAddr()
	started := time.Now()
	cmd, err := startProcess(self, []string{"-mode", "child", "-targets-file", path,
		"-interval", o.interval.String(), "-listen", listen, "-cycles", "0",
		"-heapprofile", o.heapProfile}, log)
	if err != nil {
		return usage{}, err
	}
	sleep(ctx, o.duration)
	up := countUp(listen)
	u, err := stopProcess(cmd, started)
	if err != nil {
		return usage{}, err
	}
	if up != len(addrs) {
		return u, fmt.Errorf("canopy reports %d of %d targets up (see %s)", up, len(addrs),
			log.Name())
	}
	return u, nil
}

// runServe runs the whole canopy binary (canopy serve on SQLite, with the
// API, the store and the collector) over the stand-ins for o.duration.
func runServe(ctx context.Context, o options, dir string, addrs []string) (usage, error) {
	path, err := writeTargets(dir, addrs)
	if err != nil {
		return usage{}, err
	}
	log, err := os.Create(filepath.Join(dir, "canopy-serve.log"))
	if err != nil {
		return usage{}, fmt.Errorf("create log: %w", err)
	}
	defer log.Close()
	db := filepath.Join(dir, "serve.db")
	defer os.Remove(db)

	listen := freeAddr()
	started := time.Now()
	cmd, err := startProcess(o.canopyBin, []string{"serve", "--addr", listen,
		"--database-url", "sqlite://" + db, "--scrape-targets", path,
		"--scrape-interval", o.interval.String(),
		"--scrape-timeout", min(o.interval, 10*time.Second).String(),
		"--log-level", "warn"}, log)
	if err != nil {
		return usage{}, err
	}
	sleep(ctx, o.duration)
	up := countUp(listen)
	u, err := stopProcess(cmd, started)
	if err != nil {
		return usage{}, err
	}
	if up != len(addrs) {
		return u, fmt.Errorf("canopy serve reports %d of %d targets up (see %s)", up,
			len(addrs), log.Name())
	}
	return u, nil
}

// countUp reads the child's /metrics and counts canopy_target_up 1 lines.
func countUp(addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "canopy_target_up{") && strings.HasSuffix(line, " 1") {
			n++
		}
	}
	return n
}

// runPrometheus runs one Prometheus binary over the stand-ins with the
// recording rules for o.duration.
func runPrometheus(ctx context.Context, o options, dir, bin string,
	addrs []string) (usage, string, error) {
	version := prometheusVersion(bin)
	pdir, err := os.MkdirTemp(dir, "prometheus-")
	if err != nil {
		return usage{}, "", fmt.Errorf("make dir: %w", err)
	}
	quoted := make([]string, len(addrs))
	for i, a := range addrs {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
  evaluation_interval: %[1]s
rule_files: [rules.yml]
scrape_configs:
  - job_name: kubelet
    honor_timestamps: false
    metrics_path: /metrics/cadvisor
    static_configs: [{targets: [%[2]s]}]
`, o.interval, strings.Join(quoted, ", "))
	files := map[string]string{"prometheus.yml": config, "rules.yml": recordingRules}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(pdir, name), []byte(body), 0o600); err != nil {
			return usage{}, "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	log, err := os.Create(filepath.Join(pdir, "prometheus.log"))
	if err != nil {
		return usage{}, "", fmt.Errorf("create log: %w", err)
	}
	defer log.Close()

	listen := freeAddr()
	started := time.Now()
	cmd, err := startProcess(bin, []string{
		"--config.file=" + filepath.Join(pdir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(pdir, "data"),
		"--web.listen-address=" + listen, "--log.level=warn",
	}, log)
	if err != nil {
		return usage{}, "", err
	}
	sleep(ctx, o.duration)
	up := promUp(listen)
	u, err := stopProcess(cmd, started)
	if err != nil {
		return usage{}, "", err
	}
	if up != len(addrs) {
		return u, "", fmt.Errorf("%s reports %d of %d targets up (see %s)", version, up,
			len(addrs), log.Name())
	}
	return u, version, nil
}

// promUp asks Prometheus how many targets are up.
func promUp(addr string) int {
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=count(up%3D%3D1)")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// The answer ends with ...,"N"]}]}}; the count is the last quoted number.
	s := string(b)
	end := strings.LastIndex(s, `"]`)
	start := strings.LastIndex(s[:max(end, 0)], `"`)
	if end < 0 || start < 0 {
		return -1
	}
	var n int
	_, _ = fmt.Sscanf(s[start+1:end], "%d", &n)
	return n
}

func prometheusVersion(bin string) string {
	out, err := execOutput(bin, "--version")
	if err != nil {
		return filepath.Base(bin)
	}
	first := strings.SplitN(out, "\n", 2)[0]
	if f := strings.Fields(first); len(f) >= 3 && f[2] != "(branch:" {
		return "prometheus " + strings.TrimSuffix(f[2], ",")
	}
	// Built without version stamps: name the module version it was built
	// from (v0.316.0 is Prometheus 3.x under the module proxy's numbering).
	if info, err := buildinfo.ReadFile(bin); err == nil &&
		info.Main.Path == "github.com/prometheus/prometheus" {
		return "prometheus module " + info.Main.Version
	}
	return "prometheus " + bin
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// writeTargets writes the static targets file for the stand-ins.
func writeTargets(dir string, addrs []string) (string, error) {
	var targets strings.Builder
	targets.WriteString("targets:\n")
	for i, a := range addrs {
		fmt.Fprintf(&targets, "  - {node: node-%03d, url: http://%s/metrics/cadvisor, "+
			"kind: kubelet-cadvisor}\n", i, a)
	}
	path := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(path, []byte(targets.String()), 0o600); err != nil {
		return "", fmt.Errorf("write targets: %w", err)
	}
	return path, nil
}
