// Command canopy runs the Canopy control plane: the HTTP API, the collector
// and the reconciler in one process (canopy serve), schema migrations
// (canopy migrate), dashboard rendering (canopy dashboards render) and
// canopy version. This package only reads configuration and wires the parts
// together; the parts live in api, tenancy, collector and dashboards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"canopy.dev/canopy/dashboards"
	"canopy.dev/canopy/internal/buildinfo"
	"canopy.dev/canopy/tenancy/sqlstore"
)

const usage = `canopy runs a small Kubernetes hosting platform around per-namespace metrics.

Usage:
  canopy serve [flags]                      API, collector and reconciler in one process
  canopy migrate up|down|status [flags]     schema migrations
  canopy dashboards render --out DIR [--project NAME]
                                            write every dashboard as Grafana JSON
  canopy version                            version, commit and Go version
  canopy config                             the configuration table (Markdown)

Every flag has an environment variable CANOPY_<FLAG>; secrets also read
CANOPY_<FLAG>_FILE. Run "canopy serve -h" for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}

	var err error
	switch args[0] {
	case "serve":
		err = serveCommand(ctx, args[1:], getenv, stderr)
	case "migrate":
		err = migrateCommand(ctx, args[1:], getenv, stdout, stderr)
	case "dashboards":
		err = dashboardsCommand(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "canopy %s (commit %s, %s)\n",
			buildinfo.Version, buildinfo.Commit, buildinfo.GoVersion())
	case "config":
		fmt.Fprint(stdout, ConfigTable())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "canopy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}

	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "canopy %s: %v\n", args[0], err)
		return 1
	}
}

// migrateCommand runs canopy migrate up|down|status.
func migrateCommand(ctx context.Context, args []string, getenv func(string) string,
	stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("want up, down or status")
	}
	cfg, err := LoadConfig("canopy migrate "+args[0], args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)

	store, err := sqlstore.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()

	switch args[0] {
	case "up":
		return store.Migrate(ctx)
	case "down":
		return store.MigrateDown(ctx)
	case "status":
		return store.MigrationStatus(ctx, stdout)
	}
	return fmt.Errorf("unknown migrate command %q: want up, down or status", args[0])
}

// dashboardsCommand runs canopy dashboards render --out DIR [--project NAME].
func dashboardsCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "render" {
		return errors.New("want: dashboards render --out DIR [--project NAME]")
	}
	fs := flag.NewFlagSet("canopy dashboards render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write the dashboards into (required)")
	project := fs.String("project", "", "project whose dashboards to render (default an example)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	if err := dashboards.RenderAll(*out, *project); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dashboards written to %s\n", *out)
	return nil
}

// newLogger builds the process logger from the log settings.
func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
