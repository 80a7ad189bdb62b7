package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"canopy.dev/canopy/collector"
)

// cycleReport is what a child running -cycles prints on stdout.
type cycleReport struct {
	Cycles   []float64 `json:"cycleSeconds"`
	Payloads int       `json:"payloads"`
	Failed   int       `json:"failed"`
	Samples  int       `json:"samples"`
	Pods     int       `json:"pods"`
}

// child runs the collector: -cycles N back to back then exits, or every
// -interval until signalled, serving /metrics on -listen if set.
func child(ctx context.Context, o options, log *slog.Logger) error {
	c, err := collector.New(collector.Config{
		Logger: log, TargetsFile: o.targetsFile, Interval: o.interval,
		Timeout: min(o.interval, 10*time.Second),
	})
	if err != nil {
		return err
	}
	if o.listen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c)
		l, err := net.Listen("tcp", o.listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		go func() { _ = http.Serve(l, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) }()
	}
	if o.heapProfile != "" {
		defer writeHeapProfile(o.heapProfile, log)
	}
	if o.cycles == 0 {
		return c.Run(ctx)
	}

	var rep cycleReport
	for range o.cycles {
		start := time.Now()
		st, err := c.Cycle(ctx)
		if err != nil {
			return err
		}
		rep.Cycles = append(rep.Cycles, time.Since(start).Seconds())
		rep.Payloads, rep.Failed = st.Payloads, st.Failed
		rep.Samples, rep.Pods = st.Samples, st.Pods
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// writeHeapProfile writes the child's heap profile, for
// go tool pprof -sample_index=inuse_space.
func writeHeapProfile(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Error("create heap profile", "error", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		log.Error("write heap profile", "error", err)
	}
}

// usage is what one child process cost.
type usage struct {
	cpu     time.Duration // user + system
	peakRSS int64         // bytes
	wall    time.Duration
}

func (u usage) String() string {
	return fmt.Sprintf("%6.2f CPU-s  %7.1f MiB peak RSS  over %s", u.cpu.Seconds(),
		float64(u.peakRSS)/(1<<20), u.wall.Round(time.Second))
}

// startProcess starts a child with its output going to log.
func startProcess(name string, args []string, log *os.File) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return cmd, nil
}

// stopProcess sends SIGTERM, waits, and reads the child's resource usage.
func stopProcess(cmd *exec.Cmd, started time.Time) (usage, error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return usage{}, fmt.Errorf("wait for %s: %w", cmd.Path, err)
	}
	return usageOf(cmd, started), nil
}

// usageOf reads getrusage of an ended child (ru_maxrss is in KiB on Linux).
func usageOf(cmd *exec.Cmd, started time.Time) usage {
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	u := usage{wall: time.Since(started)}
	if ru != nil {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.peakRSS = ru.Maxrss << 10
	}
	return u
}
