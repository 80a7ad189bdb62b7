package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("test", nil, envOf(nil), io.Discard)
	if err != nil {
		t.Fatalf("load defaults: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", cfg.Addr, "127.0.0.1:8080"},
		{"external url", cfg.ExternalURL, "http://127.0.0.1:8080"},
		{"database", cfg.DatabaseURL, "sqlite://canopy.db"},
		{"scrape interval", cfg.ScrapeInterval, 15 * time.Second},
		{"resync interval", cfg.ResyncInterval, time.Minute},
		{"kubelet access", cfg.KubeletAccess, "direct"},
		{"migrate", cfg.Migrate, true},
		{"prefix", cfg.NamespacePrefix, "canopy-"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(secret, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{
		"CANOPY_ADDR":                  "127.0.0.1:9000",
		"CANOPY_SCRAPE_INTERVAL":       "30s",
		"CANOPY_GRAFANA_URL":           "http://127.0.0.1:3000",
		"CANOPY_GRAFANA_USER":          "admin",
		"CANOPY_GRAFANA_PASSWORD_FILE": secret,
		"CANOPY_ADMIN_EMAILS":          "Root@Example.com, ops@example.com",
	})
	cfg, err := LoadConfig("test", []string{"--addr", "127.0.0.1:9100"}, env, io.Discard)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if cfg.Addr != "127.0.0.1:9100" {
		t.Errorf("flag must win over env: addr = %q", cfg.Addr)
	}
	if cfg.ScrapeInterval != 30*time.Second {
		t.Errorf("env must win over default: scrape interval = %v", cfg.ScrapeInterval)
	}
	if cfg.GrafanaPassword != "from-file" {
		t.Errorf("_FILE secret = %q, want from-file (trailing newline trimmed)", cfg.GrafanaPassword)
	}
	if got := strings.Join(cfg.AdminEmails, ","); got != "root@example.com,ops@example.com" {
		t.Errorf("admin emails = %q", got)
	}
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	env := envOf(map[string]string{
		"CANOPY_ADDR":            "no-port",
		"CANOPY_DATABASE_URL":    "mysql://x",
		"CANOPY_SCRAPE_INTERVAL": "soon",
		"CANOPY_KUBELET_ACCESS":  "ssh",
		"CANOPY_GRAFANA_URL":     "http://127.0.0.1:3000",
	})
	_, err := LoadConfig("test", []string{"--shard-index", "3", "--shard-count", "2",
		"--resync-interval", "never"}, env, io.Discard)
	if err == nil {
		t.Fatal("bad settings were accepted")
	}
	for _, want := range []string{"addr", "database-url", "scrape-interval", "kubelet-access",
		"grafana-user", "shard-index 3", `resync-interval = "never" from --resync-interval`,
		`addr = "no-port" from CANOPY_ADDR`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

// TestReadmeConfigTable keeps the README's configuration table generated from
// the options table: run `go run ./cmd/canopy config` and paste it between the
// markers when this fails.
func TestLoadConfigChecksPortRange(t *testing.T) {
	_, err := LoadConfig("test", []string{"--addr", "127.0.0.1:99999"}, envOf(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "port must be") {
		t.Errorf("port 99999 accepted or not explained: %v", err)
	}
}

func TestReadmeConfigTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	const begin, end = "<!-- config:begin -->\n", "<!-- config:end -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README lacks the %q ... %q markers", begin, end)
	}
	if got := s[i+len(begin) : j]; got != ConfigTable() {
		t.Errorf("README configuration table is stale; regenerate with "+
			"`go run ./cmd/canopy config`.\nwant:\n%s", ConfigTable())
	}
}
