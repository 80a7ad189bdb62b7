// Command loadtest loads GET /api/v1/projects (a user with 20 projects) on
// SQLite and, when given a server, PostgreSQL, and a bare net/http handler
// in the same run. Each server runs in a child process of its own, so that
// the load crosses loopback between two processes; each run's table gives
// requests per second, p50 and p99 latency, the ratio to the bare handler
// and the CPU time per request of server and client, and the last table
// the medians over the runs. It reports and always exits 0 once it has
// measured; it asserts nothing.
//
//	go run ./internal/loadtest/cmd/loadtest -postgres "$CANOPY_TEST_POSTGRES_URL"
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"canopy.dev/canopy/internal/loadtest"
)

func main() {
	var (
		serve = flag.String("serve", "",
			"internal: serve 'bare' or a database URL and print the address")
		pgURL = flag.String("postgres", "",
			"PostgreSQL server URL; a scratch database is made on it")
		conns    = flag.Int("conns", 50, "concurrent connections")
		duration = flag.Duration("duration", 5*time.Second, "measured time per target")
		warm     = flag.Duration("warmup", time.Second, "unmeasured time before each run")
		runs     = flag.Int("runs", 3, "runs over every target; the medians are printed last")
		profiles = flag.String("cpuprofile", "",
			"folder to write each server's CPU profile to, as TARGET-RUN.pprof")
	)
	flag.Parse()
	ctx := context.Background()
	if *serve != "" {
		if err := serveChild(ctx, *serve, *profiles); err != nil {
			log.Fatalf("loadtest server: %v", err)
		}
		return
	}
	plan := plan{pgURL: *pgURL, profiles: *profiles, conns: *conns, warm: *warm, d: *duration}
	if err := plan.run(ctx, max(1, *runs)); err != nil {
		log.Fatalf("loadtest: %v", err)
	}
}

// plan is what to load and how.
type plan struct {
	pgURL, profiles string
	conns           int
	warm, d         time.Duration
}

// target is one server to load; file names its CPU profile.
type target struct{ name, file, serve, path string }

// row is one target's figures in one run.
type row struct {
	name               string
	rps, ratio         float64
	p50, p99           time.Duration
	errors             int
	serverCPU, client  time.Duration // per request sent
	serverCPUIsPartial bool          // PostgreSQL's own processes are not counted
}

// run loads every target runs times, bare first in each run so that each
// ratio compares figures taken moments apart, and prints every run's table
// and then the medians.
func (p plan) run(ctx context.Context, runs int) error {
	fmt.Printf("GET, %d connections, %s measured after %s warm-up, each server in its own "+
		"process.\nratio: requests/s over the bare handler's in the same run. cpu/req: CPU "+
		"time (user+system)\nper request sent, of the server process (+: PostgreSQL's own "+
		"not counted) and of the client.\n", p.conns, p.d, p.warm)
	var all [][]row
	for i := 1; i <= runs; i++ {
		rows, err := p.runOnce(ctx, i)
		if err != nil {
			return err
		}
		fmt.Printf("\nrun %d of %d\n", i, runs)
		printRows(rows)
		all = append(all, rows)
	}
	if runs > 1 {
		fmt.Printf("\nmedian of %d runs\n", runs)
		printRows(medians(all))
	}
	return nil
}

// runOnce loads each target once, on stores of its own.
func (p plan) runOnce(ctx context.Context, n int) ([]row, error) {
	dir, err := os.MkdirTemp("", "canopy-loadtest-")
	if err != nil {
		return nil, fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	targets := []target{
		{"bare net/http", "bare", "bare", "/"},
		{"canopy sqlite", "sqlite", "sqlite://" + filepath.Join(dir, "canopy.db"), "/api/v1/projects"},
	}
	if p.pgURL != "" {
		dbURL, drop, err := scratchDatabase(ctx, p.pgURL)
		if err != nil {
			return nil, err
		}
		defer drop()
		targets = append(targets, target{"canopy postgres", "postgres", dbURL, "/api/v1/projects"})
	}

	var rows []row
	for _, tg := range targets {
		profile := ""
		if p.profiles != "" {
			profile = filepath.Join(p.profiles, fmt.Sprintf("%s-%d.pprof", tg.file, n))
		}
		r, err := p.loadOne(ctx, tg, profile)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", tg.name, err)
		}
		rows = append(rows, r)
	}
	for i := range rows {
		rows[i].ratio = rows[i].rps / rows[0].rps
	}
	return rows, nil
}

// loadOne starts the target's server process, loads it and stops it. With
// a profile path the server writes its CPU profile there.
func (p plan) loadOne(ctx context.Context, tg target, profile string) (row, error) {
	self, err := os.Executable()
	if err != nil {
		return row{}, fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "-serve", tg.serve, "-cpuprofile", profile)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return row{}, fmt.Errorf("start server: %w", err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()

	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		return row{}, fmt.Errorf("read server address: %w", err)
	}
	addr, token, _ := strings.Cut(strings.TrimSpace(line), " ")

	clientStart := cpuTime()
	res, err := loadtest.Run(ctx, "http://"+addr+tg.path, token, p.conns, p.warm, p.d)
	if err != nil {
		return row{}, err
	}
	client := cpuTime() - clientStart

	// The server prints the CPU time it spent serving when told to stop.
	_ = stdin.Close()
	line, err = out.ReadString('\n')
	if err != nil {
		return row{}, fmt.Errorf("read server CPU time: %w", err)
	}
	served, err := time.ParseDuration(strings.TrimSpace(line))
	if err != nil {
		return row{}, fmt.Errorf("read server CPU time: %w", err)
	}
	sent := time.Duration(max(1, res.Sent))
	return row{
		name: tg.name, rps: res.RequestsPerSecond(), p50: res.P50, p99: res.P99,
		errors: res.Errors, serverCPU: served / sent, client: client / sent,
		serverCPUIsPartial: tg.file == "postgres",
	}, nil
}

// printRows prints one table.
func printRows(rows []row) {
	fmt.Printf("%-16s %11s %9s %9s %7s %6s %15s %15s\n", "target", "requests/s", "p50", "p99",
		"errors", "ratio", "server cpu/req", "client cpu/req")
	const µs10 = 10 * time.Microsecond
	for _, r := range rows {
		partial := ""
		if r.serverCPUIsPartial {
			partial = "+"
		}
		fmt.Printf("%-16s %11.0f %9s %9s %7d %6.2f %15s %15s\n", r.name, r.rps,
			r.p50.Round(µs10), r.p99.Round(µs10), r.errors, r.ratio,
			r.serverCPU.Round(time.Microsecond).String()+partial,
			r.client.Round(time.Microsecond))
	}
}

// medians returns, per target, the median of each figure over the runs.
func medians(runs [][]row) []row {
	var out []row
	for i := range runs[0] {
		of := func(figure func(row) float64) float64 {
			vs := make([]float64, 0, len(runs))
			for _, rows := range runs {
				vs = append(vs, figure(rows[i]))
			}
			return median(vs)
		}
		m := runs[0][i]
		m.rps = of(func(r row) float64 { return r.rps })
		m.ratio = of(func(r row) float64 { return r.ratio })
		m.p50 = time.Duration(of(func(r row) float64 { return float64(r.p50) }))
		m.p99 = time.Duration(of(func(r row) float64 { return float64(r.p99) }))
		m.errors = int(of(func(r row) float64 { return float64(r.errors) }))
		m.serverCPU = time.Duration(of(func(r row) float64 { return float64(r.serverCPU) }))
		m.client = time.Duration(of(func(r row) float64 { return float64(r.client) }))
		out = append(out, m)
	}
	return out
}

// median is the middle value of vs, or the mean of the two middle ones.
func median(vs []float64) float64 {
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// cpuTime is the CPU time, user and system, this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serveChild serves one target on a loopback port, prints "ADDR TOKEN", and
// stops when its standard input closes, printing the CPU time it spent
// serving. With a profile path it writes its
// CPU profile, from the first request on, there.
func serveChild(ctx context.Context, what, profile string) error {
	h, token := loadtest.Bare(), ""
	if what != "bare" {
		var closeStore func()
		var err error
		h, token, closeStore, err = loadtest.Canopy(ctx, what)
		if err != nil {
			return err
		}
		defer closeStore()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if profile != "" {
		stop, err := startProfile(profile)
		if err != nil {
			return err
		}
		defer stop()
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); _ = srv.Close() }()
	start := cpuTime()
	fmt.Printf("%s %s\n", ln.Addr(), token)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Println(cpuTime() - start)
	return nil
}

// startProfile starts the CPU profile written to path and returns what ends it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}

// scratchDatabase makes an empty database on the server at base and
// returns its URL and a function that drops it.
func scratchDatabase(ctx context.Context, base string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "canopy_bench_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close(ctx)
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	cfg := admin.Config()
	u := &neturl.URL{
		Scheme: "postgres", Host: fmt.Sprintf("%s:%d", cfg.Host, cfg.Port), Path: "/" + name,
		User: neturl.User(cfg.User), RawQuery: "sslmode=disable",
	}
	if cfg.Password != "" {
		u.User = neturl.UserPassword(cfg.User, cfg.Password)
	}
	url := u.String()
	drop := func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = admin.Close(context.Background())
	}
	return url, drop, nil
}
