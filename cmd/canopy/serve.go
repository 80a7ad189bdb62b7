package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"

	"canopy.dev/canopy/internal/buildinfo"
	"canopy.dev/canopy/tenancy/sqlstore"
)

// serveCommand runs the API, the collector and the reconciler until ctx ends
// (SIGTERM or SIGINT), then shuts down gracefully.
func serveCommand(ctx context.Context, args []string, getenv func(string) string,
	stderr io.Writer) error {
	cfg, err := LoadConfig("canopy serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	klog.SetSlogLogger(logger) // client-go's own lines, leader election included
	logger.Info("starting canopy", "version", buildinfo.Version, "commit", buildinfo.Commit)

	// The store, migrated unless told not to; a newer schema is refused.
	store, err := sqlstore.Open(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()
	if cfg.Migrate {
		err = store.Migrate(ctx) // refuses a schema newer than this binary
	} else {
		err = store.CheckSchema(ctx)
	}
	if err != nil {
		return fmt.Errorf("prepare schema: %w", err)
	}

	// Canopy's own metrics and the collector's share one registry.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	parts, err := wire(ctx, cfg, logger, store, reg)
	if err != nil {
		return err
	}

	// Background parts stop when ctx ends; the HTTP server drains first.
	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	for _, p := range parts.background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("background part stopped", "part", p.name, "error", err)
			}
		}()
	}

	err = serveHTTP(ctx, cfg, logger, parts.handler)
	cancel()
	wg.Wait()
	return err
}

// serveHTTP listens on cfg.Addr until ctx ends, then drains requests in flight.
func serveHTTP(ctx context.Context, cfg *Config, logger *slog.Logger, h http.Handler) error {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen addr=%q: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "external_url", cfg.ExternalURL)

	select {
	case err := <-errc:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "grace", cfg.ShutdownTimeout)
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down http: %w", err)
	}
	logger.Info("stopped")
	return nil
}
