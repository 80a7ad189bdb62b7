package sqlstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseDatabaseURL(t *testing.T) {
	cases := []struct {
		url     string
		dialect dialect
		path    string // SQLite file, or PostgreSQL database
		host    string // PostgreSQL host
	}{
		{url: "sqlite://canopy.db", dialect: dialectSQLite, path: "canopy.db"},
		{url: "sqlite:///var/lib/canopy/canopy.db", dialect: dialectSQLite,
			path: "/var/lib/canopy/canopy.db"},
		{url: "sqlite://data/canopy.db", dialect: dialectSQLite, path: "data/canopy.db"},
		{url: "sqlite:canopy.db", dialect: dialectSQLite, path: "canopy.db"},
		{url: "SQLITE://my%20db.db", dialect: dialectSQLite, path: "my db.db"},
		{url: "postgres://canopy:secret@db.internal:5433/canopy?sslmode=require",
			dialect: dialectPostgres, path: "canopy", host: "db.internal"},
		{url: "postgresql://127.0.0.1/canopy", dialect: dialectPostgres, path: "canopy",
			host: "127.0.0.1"},
	}
	for _, c := range cases {
		tg, err := parseDatabaseURL(c.url)
		if err != nil {
			t.Errorf("parse %q: %v", c.url, err)
			continue
		}
		if tg.dialect != c.dialect {
			t.Errorf("parse %q: dialect %s, want %s", c.url, tg.dialect, c.dialect)
		}
		switch c.dialect {
		case dialectSQLite:
			if tg.path != c.path {
				t.Errorf("parse %q: path %q, want %q", c.url, tg.path, c.path)
			}
		case dialectPostgres:
			if tg.pgConfig.Database != c.path || tg.pgConfig.Host != c.host {
				t.Errorf("parse %q: host %q database %q, want %q %q", c.url,
					tg.pgConfig.Host, tg.pgConfig.Database, c.host, c.path)
			}
		}
	}
}

func TestParseDatabaseURLRefuses(t *testing.T) {
	cases := []struct {
		url  string
		says string // part of the message
	}{
		{"", "want sqlite://PATH or postgres://"},
		{"canopy.db", "want sqlite://PATH or postgres://"},
		{"mysql://root:hunter2@localhost/canopy", `unsupported scheme "mysql"`},
		{"sqlite://", "has no path"},
		{"sqlite:", "has no path"},
		{"sqlite://:memory:", "not a file path"},
		{"sqlite://file:canopy.db?mode=memory", "no query"},
		{"sqlite://canopy.db?_pragma=foreign_keys(0)", "no query"},
		{"sqlite://data/", "is a folder"},
		{"sqlite://bad%zzescape.db", "sqlite path"},
		{"sqlite://what%3F.db", "holds a ?"},
		{"postgres://canopy:hunter2@host:notaport/canopy", "cannot parse"},
	}
	for _, c := range cases {
		_, err := parseDatabaseURL(c.url)
		if !errors.Is(err, ErrBadDatabaseURL) {
			t.Errorf("parse %q: %v, want ErrBadDatabaseURL", c.url, err)
			continue
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("parse %q: %q does not say %q", c.url, err, c.says)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parse %q: the error repeats the password: %v", c.url, err)
		}
	}
}

// TestOpenSQLite checks what Open sets up on a SQLite file.
func TestOpenSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub dir", "canopy.db")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	st := openURL(t, "sqlite://"+path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("open did not create the file: %v", err)
	}

	var mode string
	err := st.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk, busy int
	if err := st.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("writer foreign_keys = %d (%v), want 1", fk, err)
	}
	if err := st.rdb.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy); err != nil ||
		time.Duration(busy)*time.Millisecond != sqliteBusyTimeout {
		t.Errorf("reader busy_timeout = %d ms (%v), want %s", busy, err, sqliteBusyTimeout)
	}
	if _, err := st.rdb.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err == nil {
		t.Error("a reader connection accepted a write")
	}
	if st.db.Stats().MaxOpenConnections != 1 {
		t.Errorf("writer pool allows %d connections, want 1", st.db.Stats().MaxOpenConnections)
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	for _, url := range []string{
		"redis://localhost",
		"sqlite://" + filepath.Join(t.TempDir(), "missing-folder", "canopy.db"),
		"postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2",
	} {
		st, err := Open(ctx, url, nil)
		if err == nil {
			st.Close()
			t.Errorf("open %q succeeded", url)
		}
	}
}

func FuzzParseDatabaseURL(f *testing.F) {
	for _, seed := range []string{
		"sqlite://canopy.db", "sqlite:///abs/path.db", "sqlite:rel.db", "sqlite://:memory:",
		"sqlite://a%2Fb.db", "sqlite://x?y", "postgres://u:p@h:5432/db?sslmode=disable",
		"postgresql:///db?host=/run/postgresql", "postgres://[::1]:5432/db", "mysql://x",
		"", ":", "sqlite", "SQLite://C%3A/x.db", "postgres://h/db?connect_timeout=x",
		"sqlite://a%3Fb.db",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tg, err := parseDatabaseURL(raw)
		if err != nil {
			if !errors.Is(err, ErrBadDatabaseURL) {
				t.Fatalf("parse %q: error %v does not wrap ErrBadDatabaseURL", raw, err)
			}
			return
		}
		switch tg.dialect {
		case dialectSQLite:
			// The path is what the driver opens: never empty, never read as
			// driver parameters or as a URI.
			if tg.path == "" || strings.ContainsAny(tg.path, "?\x00") ||
				strings.HasPrefix(tg.path, "file:") || tg.path == ":memory:" {
				t.Fatalf("parse %q: accepted sqlite path %q", raw, tg.path)
			}
		case dialectPostgres:
			if tg.pgConfig == nil {
				t.Fatalf("parse %q: postgres without a config", raw)
			}
		default:
			t.Fatalf("parse %q: accepted with dialect %d", raw, tg.dialect)
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	valid := cursor{CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		ID: "0197f3d2-8c4e-7b1a-9d2f-1a2b3c4d5e6f"}.encode()
	for _, seed := range []string{valid, "", "not-a-cursor", "////", "aGVsbG8", valid + "A"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, ok, err := decodeCursor(text)
		if err != nil {
			if ok {
				t.Fatalf("decode %q: error and ok", text)
			}
			return
		}
		if !ok {
			if text != "" {
				t.Fatalf("decode %q: no error, no cursor", text)
			}
			return
		}
		// Whatever decodes re-encodes to a cursor that decodes the same.
		again, ok, err := decodeCursor(c.encode())
		if err != nil || !ok || !again.CreatedAt.Equal(c.CreatedAt) || again.ID != c.ID {
			t.Fatalf("decode %q = %+v; its encoding decodes to %+v, %v, %v",
				text, c, again, ok, err)
		}
	})
}
