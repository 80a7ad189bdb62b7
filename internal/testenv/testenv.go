// Package testenv finds and starts the real parts that Canopy's tests run
// against: the shared kubelet fixtures, a PostgreSQL server, a Prometheus
// binary and the envtest binaries. A missing part skips the test and says
// why; with CI set, it fails the test instead.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InCI reports whether the CI variable is set: missing parts then fail tests.
func InCI() bool { return os.Getenv("CI") != "" }

// missing skips t, or fails it in CI, because a part is not there.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("CI is set and %s", msg)
	}
	t.Skip(msg)
}

// repoRoot is the folder holding go.mod, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FixturesDir returns the folder of recorded kubelet and cAdvisor outputs:
// CANOPY_FIXTURES, else ../shared/fixtures beside the repository.
func FixturesDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CANOPY_FIXTURES")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "..", "shared", "fixtures")
	}
	if _, err := os.Stat(dir); err != nil {
		missing(t, "fixtures folder %s is absent (set CANOPY_FIXTURES)", dir)
	}
	return dir
}

// Fixture returns the bytes of one shared fixture file.
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(FixturesDir(t), name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return b
}

// PostgresURL creates an empty database on the server at
// CANOPY_TEST_POSTGRES_URL, drops it when the test ends, and returns its URL.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("CANOPY_TEST_POSTGRES_URL")
	if base == "" {
		missing(t, "CANOPY_TEST_POSTGRES_URL is not set (make test sets it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		missing(t, "PostgreSQL at CANOPY_TEST_POSTGRES_URL is unreachable: %v", err)
	}
	defer admin.Close(context.Background())

	name := "canopy_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})

	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("parse CANOPY_TEST_POSTGRES_URL: %v", err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable",
		cfg.User, cfg.Host, cfg.Port, name)
}

// PrometheusBinary returns the path of a prometheus binary:
// CANOPY_TEST_PROMETHEUS, else prometheus on PATH.
func PrometheusBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CANOPY_TEST_PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		missing(t, "no prometheus binary on PATH and CANOPY_TEST_PROMETHEUS is not set")
	}
	return p
}

// KubeAssets returns the folder holding kube-apiserver and etcd for envtest
// (KUBEBUILDER_ASSETS, which make testbin prints).
func KubeAssets(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		missing(t, "KUBEBUILDER_ASSETS is not set (run make testbin)")
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			missing(t, "%s is not in KUBEBUILDER_ASSETS=%s", bin, dir)
		}
	}
	return dir
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
