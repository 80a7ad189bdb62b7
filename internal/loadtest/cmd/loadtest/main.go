// Command loadtest loads GET /api/v1/projects (a user with 20 projects) on
// SQLite and, when given a server, PostgreSQL, and a bare net/http handler
// in the same run. Each server runs in a child process of its own, so that
// the load crosses loopback between two processes; the table printed gives
// requests per second, p50 and p99 latency and the ratio to the bare handler.
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
	"strings"
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
		duration = flag.Duration("duration", 10*time.Second, "measured time per target")
		warm     = flag.Duration("warmup", 2*time.Second, "unmeasured time before each run")
	)
	flag.Parse()
	ctx := context.Background()
	if *serve != "" {
		if err := serveChild(ctx, *serve); err != nil {
			log.Fatalf("loadtest server: %v", err)
		}
		return
	}
	if err := run(ctx, *pgURL, *conns, *warm, *duration); err != nil {
		log.Fatalf("loadtest: %v", err)
	}
}

// target is one server to load.
type target struct{ name, serve, path string }

func run(ctx context.Context, pgURL string, conns int, warm, d time.Duration) error {
	dir, err := os.MkdirTemp("", "canopy-loadtest-")
	if err != nil {
		return fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	targets := []target{
		{"bare net/http", "bare", "/"},
		{"canopy sqlite", "sqlite://" + filepath.Join(dir, "canopy.db"), "/api/v1/projects"},
	}
	if pgURL != "" {
		dbURL, drop, err := scratchDatabase(ctx, pgURL)
		if err != nil {
			return err
		}
		defer drop()
		targets = append(targets, target{"canopy postgres", dbURL, "/api/v1/projects"})
	}

	fmt.Printf("GET, %d connections, %s measured after %s warm-up, server in its own process\n",
		conns, d, warm)
	fmt.Printf("%-18s %12s %10s %10s %8s %7s\n",
		"target", "requests/s", "p50", "p99", "errors", "ratio")
	var bare float64
	for _, tg := range targets {
		res, err := loadOne(ctx, tg, conns, warm, d)
		if err != nil {
			return fmt.Errorf("load %s: %w", tg.name, err)
		}
		rps := res.RequestsPerSecond()
		if bare == 0 {
			bare = rps
		}
		const µs10 = 10 * time.Microsecond
		fmt.Printf("%-18s %12.0f %10s %10s %8d %7.2f\n", tg.name, rps,
			res.P50.Round(µs10), res.P99.Round(µs10), res.Errors, rps/bare)
	}
	return nil
}

// loadOne starts the target's server process, loads it and stops it.
func loadOne(
	ctx context.Context, tg target, conns int, warm, d time.Duration,
) (loadtest.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return loadtest.Result{}, fmt.Errorf("find own binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "-serve", tg.serve)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return loadtest.Result{}, fmt.Errorf("start server: %w", err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return loadtest.Result{}, fmt.Errorf("read server address: %w", err)
	}
	addr, token, _ := strings.Cut(strings.TrimSpace(line), " ")
	return loadtest.Run(ctx, "http://"+addr+tg.path, token, conns, warm, d)
}

// serveChild serves one target on a loopback port, prints "ADDR TOKEN", and
// stops when its standard input closes.
func serveChild(ctx context.Context, what string) error {
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
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); _ = srv.Close() }()
	fmt.Printf("%s %s\n", ln.Addr(), token)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
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
