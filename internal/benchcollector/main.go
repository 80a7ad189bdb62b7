// Command benchcollector measures the collector as a separate process and
// prints the figures the README reports:
//
//   - versus: N stand-in kubelets serve the 2.1 MB cadvisor fixture; the
//     collector scrapes them every interval for a while, then each
//     Prometheus binary given does the same work (scraping the same targets,
//     evaluating four namespace recording rules of the mixin). CPU seconds
//     and peak RSS of each child process come from getrusage. A summary
//     gives the medians over -runs and Canopy's ratios against the goals,
//     judged against the newest Prometheus given: Prometheus 3 at
//     /tmp/prom3/prometheus when it is there, else Debian's 2.42 alone.
//   - scale: many nodes with many pods each, served by a few stand-in
//     servers from the static targets file; the collector child runs a few
//     cycles back to back and reports each cycle's time and its peak RSS.
//
// It runs itself as the collector child (-mode child), so nothing but this
// binary and Prometheus is needed. Stand-ins listen on 127.0.0.1 only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "versus", "versus | scale | child")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "versus: how long each side runs")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "versus: scrape interval")
	flag.IntVar(&o.targets, "targets", 20, "versus: stand-in kubelets")
	flag.StringVar(&o.fixture, "fixture", defaultFixture(), "versus: cadvisor body to serve")
	flag.StringVar(&o.prometheus, "prometheus", "/usr/bin/prometheus,"+prom3Path,
		"versus: comma-separated Prometheus binaries to compare with, oldest first; "+
			"missing ones are skipped")
	flag.IntVar(&o.runs, "runs", 1, "versus: runs of every side; the summary takes medians")
	flag.StringVar(&o.canopyBin, "canopy", "",
		"versus: also measure this canopy binary's whole `serve` (API, store, collector)")
	flag.IntVar(&o.nodes, "nodes", 1000, "scale: nodes")
	flag.IntVar(&o.pods, "pods", 110, "scale: pods per node")
	flag.IntVar(&o.cycles, "cycles", 4, "scale: cycles to run")
	flag.IntVar(&o.servers, "servers", 4, "scale: stand-in servers sharing the nodes")
	flag.StringVar(&o.targetsFile, "targets-file", "", "child: static targets file")
	flag.StringVar(&o.listen, "listen", "", "child: serve /metrics here")
	flag.StringVar(&o.heapProfile, "heapprofile", "",
		"versus, scale: write the collector child's heap profile here when it ends")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch o.mode {
	case "versus":
		err = versus(ctx, o)
	case "scale":
		err = scale(ctx, o)
	case "child":
		err = child(ctx, o, log)
	default:
		err = fmt.Errorf("unknown mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcollector:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	mode        string
	duration    time.Duration
	interval    time.Duration
	targets     int
	fixture     string
	prometheus  string
	nodes       int
	pods        int
	cycles      int
	servers     int
	targetsFile string
	listen      string
	heapProfile string
	runs        int
	canopyBin   string
}

// defaultFixture is the large cadvisor fixture under CANOPY_FIXTURES, else
// ../shared/fixtures from the working directory (the repository root).
func defaultFixture() string {
	dir := os.Getenv("CANOPY_FIXTURES")
	if dir == "" {
		dir = filepath.Join("..", "shared", "fixtures")
	}
	return filepath.Join(dir, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
}

// binaries splits the -prometheus flag, keeping the ones that exist.
func binaries(list string) []string {
	var out []string
	for _, b := range strings.Split(list, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if _, err := os.Stat(b); err != nil {
			fmt.Fprintf(os.Stderr, "skipping %s: %v\n", b, err)
			continue
		}
		out = append(out, b)
	}
	return out
}
