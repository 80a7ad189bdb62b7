package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the canopy binary. Each field is described once,
// in options below: its flag, its CANOPY_* variable, its default and its help.
type Config struct {
	Addr            string
	ExternalURL     string
	DatabaseURL     string
	Migrate         bool
	JWTKeyFile      string
	AdminEmails     []string
	NamespacePrefix string

	Kubeconfig          string
	Reconciler          bool
	ResyncInterval      time.Duration
	LeaderElection      bool
	LeaderElectionNS    string
	IngressNamespace    string
	MonitoringNamespace string

	Collector          bool
	ScrapeInterval     time.Duration
	ScrapeTimeout      time.Duration
	ScrapeTargets      string
	KubeletAccess      string
	KubeletTokenFile   string
	KubeletCAFile      string
	KubeletInsecureTLS bool
	ShardIndex         int
	ShardCount         int

	GrafanaURL      string
	GrafanaUser     string
	GrafanaPassword string
	PrometheusURL   string

	LoginRatePerAddress     int
	LoginFailuresPerAccount int
	LogLevel                string
	LogFormat               string
	ShutdownTimeout         time.Duration
}

// option describes one setting. Secret options also read CANOPY_<NAME>_FILE.
type option struct {
	flag   string
	def    string
	usage  string
	secret bool
	set    func(c *Config, v string) error
}

// env is the option's environment variable: CANOPY_ and the flag in upper snake case.
func (o option) env() string {
	return "CANOPY_" + strings.ToUpper(strings.ReplaceAll(o.flag, "-", "_"))
}

var options = []option{
	{flag: "addr", def: "127.0.0.1:8080", usage: "listen address",
		set: func(c *Config, v string) error { c.Addr = v; return checkAddr(v) }},
	{flag: "external-url", def: "",
		usage: "where users and Grafana reach Canopy (default http:// + the listen address)",
		set:   func(c *Config, v string) error { c.ExternalURL = v; return checkURL(v, true) }},
	{flag: "database-url", def: "sqlite://canopy.db", secret: true,
		usage: "sqlite://PATH or postgres://...",
		set:   func(c *Config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
	{flag: "migrate", def: "true", usage: "apply schema migrations when serve starts",
		set: func(c *Config, v string) error { return setBool(&c.Migrate, v) }},
	{flag: "jwt-key-file", def: "",
		usage: "PEM Ed25519 key that signs access tokens (default: generated and kept in the store)",
		set:   func(c *Config, v string) error { c.JWTKeyFile = v; return checkFile(v) }},
	{flag: "admin-emails", def: "", usage: "comma-separated emails of platform admins",
		set: func(c *Config, v string) error { c.AdminEmails = splitList(v); return nil }},
	{flag: "namespace-prefix", def: "canopy-", usage: "prefix of every project namespace",
		set: func(c *Config, v string) error { c.NamespacePrefix = v; return checkPrefix(v) }},

	{flag: "kubeconfig", def: "",
		usage: "kubeconfig of the cluster to manage and scrape " +
			"(default in-cluster, then ~/.kube/config, else none)",
		set: func(c *Config, v string) error { c.Kubeconfig = v; return checkFile(v) }},
	{flag: "reconciler", def: "true", usage: "run the reconciler and the Grafana sync",
		set: func(c *Config, v string) error { return setBool(&c.Reconciler, v) }},
	{flag: "resync-interval", def: "1m",
		usage: "full pass of the reconciler and the Grafana sync",
		set:   func(c *Config, v string) error { return setDuration(&c.ResyncInterval, v) }},
	{flag: "leader-election", def: "true",
		usage: "elect one reconciler among replicas through a Lease",
		set:   func(c *Config, v string) error { return setBool(&c.LeaderElection, v) }},
	{flag: "leader-election-namespace", def: "canopy-system",
		usage: "namespace of the leader election Lease",
		set:   func(c *Config, v string) error { c.LeaderElectionNS = v; return nil }},
	{flag: "ingress-namespace", def: "ingress-nginx",
		usage: "namespace of the ingress controller, admitted by project NetworkPolicies",
		set:   func(c *Config, v string) error { c.IngressNamespace = v; return nil }},
	{flag: "monitoring-namespace", def: "monitoring",
		usage: "namespace of the monitoring stack, admitted by project NetworkPolicies",
		set:   func(c *Config, v string) error { c.MonitoringNamespace = v; return nil }},

	{flag: "collector", def: "true", usage: "run the kubelet and cAdvisor collector",
		set: func(c *Config, v string) error { return setBool(&c.Collector, v) }},
	{flag: "scrape-interval", def: "15s", usage: "collector cycle",
		set: func(c *Config, v string) error { return setDuration(&c.ScrapeInterval, v) }},
	{flag: "scrape-timeout", def: "10s", usage: "deadline of one target's scrape",
		set: func(c *Config, v string) error { return setDuration(&c.ScrapeTimeout, v) }},
	{flag: "scrape-targets", def: "",
		usage: "YAML file of static targets, for hosts without discovery",
		set:   func(c *Config, v string) error { c.ScrapeTargets = v; return checkFile(v) }},
	{flag: "kubelet-access", def: "direct",
		usage: "direct (node address and kubelet port) or proxy (the API server's node proxy)",
		set:   func(c *Config, v string) error { c.KubeletAccess = v; return checkAccess(v) }},
	{flag: "kubelet-token-file", def: "/var/run/secrets/kubernetes.io/serviceaccount/token",
		usage: "bearer token for direct kubelet access, re-read when it rotates",
		set:   func(c *Config, v string) error { c.KubeletTokenFile = v; return nil }},
	{flag: "kubelet-ca-file", def: "", usage: "CA bundle that signs kubelet serving certificates",
		set: func(c *Config, v string) error { c.KubeletCAFile = v; return checkFile(v) }},
	{flag: "kubelet-insecure-skip-verify", def: "false",
		usage: "skip verifying kubelet serving certificates",
		set:   func(c *Config, v string) error { return setBool(&c.KubeletInsecureTLS, v) }},
	{flag: "shard-index", def: "0", usage: "this replica's collector shard (0-based)",
		set: func(c *Config, v string) error { return setInt(&c.ShardIndex, v, 0, 1<<20) }},
	{flag: "shard-count", def: "1", usage: "number of collector shards; nodes are split by name",
		set: func(c *Config, v string) error { return setInt(&c.ShardCount, v, 1, 1<<20) }},

	{flag: "grafana-url", def: "", usage: "Grafana to sync into as a server admin (none: sync off)",
		set: func(c *Config, v string) error { c.GrafanaURL = v; return checkURL(v, true) }},
	{flag: "grafana-user", def: "", usage: "Grafana server admin user",
		set: func(c *Config, v string) error { c.GrafanaUser = v; return nil }},
	{flag: "grafana-password", def: "", secret: true, usage: "Grafana server admin password",
		set: func(c *Config, v string) error { c.GrafanaPassword = v; return nil }},
	{flag: "prometheus-url", def: "", usage: "Prometheus behind the tenant query proxy",
		set: func(c *Config, v string) error { c.PrometheusURL = v; return checkURL(v, true) }},

	{flag: "login-rate-per-address", def: "10",
		usage: "login attempts a minute per client address",
		set:   func(c *Config, v string) error { return setInt(&c.LoginRatePerAddress, v, 1, 1e6) }},
	{flag: "login-failures-per-account", def: "5",
		usage: "failed logins per 15 minutes per account",
		set:   func(c *Config, v string) error { return setInt(&c.LoginFailuresPerAccount, v, 1, 1e6) }},
	{flag: "log-level", def: "info", usage: "debug, info, warn or error",
		set: func(c *Config, v string) error { c.LogLevel = v; return checkLevel(v) }},
	{flag: "log-format", def: "text", usage: "text or json",
		set: func(c *Config, v string) error { c.LogFormat = v; return checkOneOf(v, "text", "json") }},
	{flag: "shutdown-timeout", def: "15s", usage: "grace period for requests in flight on SIGTERM",
		set: func(c *Config, v string) error { return setDuration(&c.ShutdownTimeout, v) }},
}

// LoadConfig reads defaults, then CANOPY_* variables (and *_FILE for secrets),
// then flags, and validates everything at once: the error lists every bad
// setting, one per line.
func LoadConfig(name string, args []string, getenv func(string) string,
	stderr io.Writer) (*Config, error) {
	values := map[string]string{}
	from := map[string]string{} // where each value came from, for errors
	for _, o := range options {
		values[o.flag] = o.def
		from[o.flag] = "default"
	}

	// Environment, then the _FILE variant of secrets.
	var problems []string
	for _, o := range options {
		if v := getenv(o.env()); v != "" {
			values[o.flag], from[o.flag] = v, o.env()
		}
		if !o.secret {
			continue
		}
		if path := getenv(o.env() + "_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s_FILE: %v", o.env(), err))
				continue
			}
			values[o.flag] = strings.TrimRight(string(b), "\r\n")
			from[o.flag] = o.env() + "_FILE"
		}
	}

	// Flags win over the environment.
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, o := range options {
		fs.Func(o.flag, o.usage+" (env "+o.env()+", default "+quoteDefault(o.def)+")",
			func(v string) error { values[o.flag], from[o.flag] = v, "--"+o.flag; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments: %q", fs.Args()))
	}

	cfg := &Config{}
	for _, o := range options {
		if err := o.set(cfg, values[o.flag]); err != nil {
			shown := strconv.Quote(values[o.flag])
			if o.secret {
				shown = "(secret)"
			}
			problems = append(problems, fmt.Sprintf("%s = %s from %s: %v", o.flag, shown,
				from[o.flag], err))
		}
	}
	problems = append(problems, cfg.crossCheck()...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	if cfg.ExternalURL == "" {
		cfg.ExternalURL = "http://" + cfg.Addr
	}
	cfg.ExternalURL = strings.TrimRight(cfg.ExternalURL, "/")
	return cfg, nil
}

// crossCheck finds settings that are fine alone but not together.
func (c *Config) crossCheck() []string {
	var p []string
	if c.ShardIndex >= c.ShardCount && c.ShardCount > 0 {
		p = append(p, fmt.Sprintf("shard-index %d must be below shard-count %d",
			c.ShardIndex, c.ShardCount))
	}
	if c.GrafanaURL != "" && (c.GrafanaUser == "" || c.GrafanaPassword == "") {
		p = append(p, "grafana-url is set: grafana-user and grafana-password are required too")
	}
	if c.ScrapeTimeout > c.ScrapeInterval && c.ScrapeInterval > 0 {
		p = append(p, "scrape-timeout must not exceed scrape-interval")
	}
	return p
}

// ConfigTable renders every option as a Markdown table for the README.
func ConfigTable() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n")
	b.WriteString("| --- | --- | --- | --- |\n")
	for _, o := range options {
		env := "`" + o.env() + "`"
		if o.secret {
			env += ", `" + o.env() + "_FILE`"
		}
		def := "none"
		if o.def != "" {
			def = "`" + o.def + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", o.flag, env, def, o.usage)
	}
	return b.String()
}

func quoteDefault(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, strings.ToLower(s))
		}
	}
	return out
}

func setBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("want true or false")
	}
	*dst = b
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a duration such as 15s or 1m")
	}
	if d <= 0 {
		return errors.New("must be positive")
	}
	*dst = d
	return nil
}

func setInt(dst *int, v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("want an integer")
	}
	if n < lo || n > hi {
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
	*dst = n
	return nil
}

func checkAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return errors.New("port must be a number from 0 to 65535")
	}
	return nil
}

func checkURL(v string, optional bool) error {
	if v == "" && optional {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an http:// or https:// URL")
	}
	return nil
}

func checkDatabaseURL(v string) error {
	switch {
	case strings.HasPrefix(v, "sqlite://") && len(v) > len("sqlite://"):
		return nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		if _, err := url.Parse(v); err != nil {
			return errors.New("not a valid postgres:// URL")
		}
		return nil
	}
	return errors.New("want sqlite://PATH or postgres://...")
}

func checkFile(v string) error {
	if v == "" {
		return nil
	}
	if _, err := os.Stat(v); err != nil {
		return errors.New("file not found")
	}
	return nil
}

func checkPrefix(v string) error {
	if len(v) > 20 {
		return errors.New("at most 20 characters")
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return errors.New("only lower-case letters, digits and '-'")
		}
	}
	return nil
}

func checkAccess(v string) error { return checkOneOf(v, "direct", "proxy") }

func checkLevel(v string) error { return checkOneOf(v, "debug", "info", "warn", "error") }

func checkOneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(allowed, ", "))
}
