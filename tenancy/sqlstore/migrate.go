package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"canopy.dev/canopy/migrations"
	"canopy.dev/canopy/tenancy"
)

// Migrate applies every pending migration, after CheckSchema: it refuses a
// database migrated by a newer Canopy. On PostgreSQL a session lock keeps
// two Canopy processes from migrating at once.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.CheckSchema(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	err := s.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.Up(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// MigrateDown rolls back the latest applied migration, after CheckSchema.
func (s *Store) MigrateDown(ctx context.Context) error {
	if err := s.CheckSchema(ctx); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	err := s.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("no migration is applied")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// MigrationStatus writes one line per migration, known or not: version,
// state, when it was applied and its file.
func (s *Store) MigrationStatus(ctx context.Context, w io.Writer) error {
	known, err := s.knownVersions()
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}
	applied, err := s.appliedVersions(ctx)
	if err != nil {
		return fmt.Errorf("migration status: %w", err)
	}

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION")
	for _, src := range known {
		state, at := "pending", "-"
		if t, ok := applied[src.version]; ok {
			state, at = "applied", t.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", src.version, state, at, src.name)
	}
	for _, v := range unknownVersions(known, applied) {
		fmt.Fprintf(tw, "%d\tunknown\t%s\t(not in this binary)\n",
			v, applied[v].UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("migration status: write: %w", err)
	}
	return nil
}

// CheckSchema returns an error wrapping tenancy.ErrSchemaTooNew if the
// database holds a migration version newer than this binary knows, and an
// error for any other version it does not know. It changes nothing; a schema
// that lacks migrations is fine (Migrate applies them) and is logged.
func (s *Store) CheckSchema(ctx context.Context) error {
	known, err := s.knownVersions()
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	applied, err := s.appliedVersions(ctx)
	if err != nil {
		return fmt.Errorf("check schema: %w", err)
	}

	latest := known[len(known)-1].version
	if unknown := unknownVersions(known, applied); len(unknown) > 0 {
		newest := unknown[len(unknown)-1]
		if newest > latest {
			return fmt.Errorf("check schema: database is at version %d, "+
				"this binary knows up to %d: %w", newest, latest, tenancy.ErrSchemaTooNew)
		}
		return fmt.Errorf("check schema: database holds migration %d, "+
			"which this binary does not know", unknown[0])
	}
	if pending := len(known) - len(applied); pending > 0 {
		s.log.Info("database schema has pending migrations",
			"dialect", s.dialect.String(), "pending", pending, "latest_version", latest)
	}
	return nil
}

// source is one embedded migration.
type source struct {
	version int64
	name    string
}

// migrationFS returns the dialect's embedded migrations.
func (s *Store) migrationFS() fs.FS {
	if s.dialect == dialectPostgres {
		return migrations.Postgres()
	}
	return migrations.SQLite()
}

// gooseDialect names the dialect for goose.
func (s *Store) gooseDialect() goose.Dialect {
	if s.dialect == dialectPostgres {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// knownVersions lists the embedded migrations in version order.
func (s *Store) knownVersions() ([]source, error) {
	// Building a provider reads only the embedded files, not the database.
	p, err := goose.NewProvider(s.gooseDialect(), s.rdb, s.migrationFS(),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []source
	for _, src := range p.ListSources() {
		out = append(out, source{version: src.Version, name: path.Base(src.Path)})
	}
	return out, nil
}

// appliedVersions reads goose's version table without creating it: a fresh
// database has applied nothing. It maps each version to when it was applied.
func (s *Store) appliedVersions(ctx context.Context) (map[int64]time.Time, error) {
	exists, err := s.tableExists(ctx, goose.DefaultTablename)
	if err != nil {
		return nil, err
	}
	applied := map[int64]time.Time{}
	if !exists {
		return applied, nil
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT version_id, tstamp FROM `+
		goose.DefaultTablename+` WHERE version_id > 0 AND is_applied ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read migration versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			v  int64
			at dbTime
		)
		if err := rows.Scan(&v, &at); err != nil {
			return nil, fmt.Errorf("read migration versions: %w", err)
		}
		applied[v] = at.Time
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read migration versions: %w", err)
	}
	return applied, nil
}

// tableExists reports whether the schema in use holds a table of that name.
func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	query := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if s.dialect == dialectPostgres {
		query = `SELECT count(*) FROM pg_catalog.pg_tables
			WHERE tablename = ? AND schemaname = ANY (current_schemas(false))`
	}
	var n int
	if err := s.rdb.QueryRowContext(ctx, s.q(query), name).Scan(&n); err != nil {
		return false, fmt.Errorf("look up table name=%q: %w", name, err)
	}
	return n > 0, nil
}

// unknownVersions returns the applied versions missing from known, in order.
func unknownVersions(known []source, applied map[int64]time.Time) []int64 {
	var out []int64
	for v := range applied {
		if !slices.ContainsFunc(known, func(s source) bool { return s.version == v }) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// withProvider runs fn with a goose provider on the store's database.
//
// SQLite migrations get a connection of their own with foreign_keys off, as
// SQLite's documentation prescribes for rebuilding a table (DROP TABLE on a
// parent would otherwise delete its children through ON DELETE CASCADE);
// PRAGMA foreign_key_check then proves that no reference was broken.
func (s *Store) withProvider(ctx context.Context, fn func(p *goose.Provider) error) error {
	db, opts := s.db, []goose.ProviderOption{
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.log.With("component", "migrations")),
	}
	switch s.dialect {
	case dialectSQLite:
		mdb, err := openSQLiteDB(ctx, s.target.path, sqliteParams(true, false))
		if err != nil {
			return fmt.Errorf("open sqlite migration connection: %w", err)
		}
		defer mdb.Close()
		mdb.SetMaxOpenConns(1)
		db = mdb
	case dialectPostgres:
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("create migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}

	p, err := goose.NewProvider(s.gooseDialect(), db, s.migrationFS(), opts...)
	if err != nil {
		return fmt.Errorf("read embedded migrations: %w", err)
	}
	if err := fn(p); err != nil {
		return err
	}
	if s.dialect == dialectSQLite {
		return checkForeignKeys(ctx, db)
	}
	return nil
}

// checkForeignKeys fails if any SQLite row points at a missing parent.
func checkForeignKeys(ctx context.Context, db *sql.DB) error {
	var table, parent string
	err := db.QueryRowContext(ctx,
		`SELECT "table", parent FROM pragma_foreign_key_check LIMIT 1`).Scan(&table, &parent)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("check foreign keys: %w", err)
	}
	return fmt.Errorf("check foreign keys: a row of %s points at a missing %s row", table, parent)
}
