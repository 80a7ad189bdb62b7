package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrBadDatabaseURL is wrapped by every error about a database URL Open cannot use.
var ErrBadDatabaseURL = errors.New("bad database URL")

// dialect is the SQL flavour behind a Store.
type dialect int

const (
	dialectSQLite dialect = iota + 1
	dialectPostgres
)

// String names the dialect as the migrations folder does.
func (d dialect) String() string {
	switch d {
	case dialectSQLite:
		return "sqlite"
	case dialectPostgres:
		return "postgres"
	}
	return "unknown"
}

// target is a parsed database URL.
type target struct {
	dialect dialect
	// path is the SQLite file (relative to the working directory or absolute).
	path string
	// pgConfig is the PostgreSQL connection config, parsed by pgx.
	pgConfig *pgx.ConnConfig
}

// parseDatabaseURL reads sqlite://PATH (also sqlite:PATH) or postgres://...
// (also postgresql://...). Errors never repeat a password.
func parseDatabaseURL(raw string) (target, error) {
	scheme, rest, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return target{}, fmt.Errorf("%w: want sqlite://PATH or postgres://...", ErrBadDatabaseURL)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3":
		return parseSQLiteURL(rest)
	case "postgres", "postgresql":
		return parsePostgresURL(raw)
	}
	return target{}, fmt.Errorf("%w: unsupported scheme %q: want sqlite://PATH or postgres://...",
		ErrBadDatabaseURL, scheme)
}

// parseSQLiteURL reads what follows "sqlite:": //PATH, ///ABSPATH or PATH.
func parseSQLiteURL(rest string) (target, error) {
	rest = strings.TrimPrefix(rest, "//")
	if strings.ContainsAny(rest, "?#") {
		return target{}, fmt.Errorf("%w: sqlite URL takes no query or fragment: %q",
			ErrBadDatabaseURL, rest)
	}
	path, err := url.PathUnescape(rest)
	if err != nil {
		return target{}, fmt.Errorf("%w: sqlite path %q: %w", ErrBadDatabaseURL, rest, err)
	}
	switch {
	case path == "":
		return target{}, fmt.Errorf("%w: sqlite URL has no path: want sqlite://canopy.db",
			ErrBadDatabaseURL)
	case strings.ContainsAny(path, "?\x00"):
		// The driver would read what follows a ? as its own parameters.
		return target{}, fmt.Errorf("%w: sqlite path %q holds a ? or a NUL byte",
			ErrBadDatabaseURL, path)
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		// An in-memory database would vanish with its connection, and a
		// file: URI would bypass the settings Open applies.
		return target{}, fmt.Errorf("%w: sqlite path %q is not a file path",
			ErrBadDatabaseURL, path)
	case strings.HasSuffix(path, "/"):
		return target{}, fmt.Errorf("%w: sqlite path %q is a folder", ErrBadDatabaseURL, path)
	}
	return target{dialect: dialectSQLite, path: path}, nil
}

// parsePostgresURL checks a PostgreSQL URL with pgx's own parser.
func parsePostgresURL(raw string) (target, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		// pgx's message may quote the URL; it masks the password itself.
		return target{}, fmt.Errorf("%w: %w", ErrBadDatabaseURL, err)
	}
	return target{dialect: dialectPostgres, pgConfig: cfg}, nil
}
