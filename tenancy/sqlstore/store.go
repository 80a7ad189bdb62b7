// Package sqlstore implements tenancy.Store on SQLite (modernc.org/sqlite,
// no cgo) and on PostgreSQL (pgx), with the same behaviour on both, and runs
// the embedded goose migrations of package migrations.
//
// It owns the SQL: table and column names, placeholders, time encoding and
// the mapping of driver errors to tenancy's sentinels. It knows nothing of
// HTTP, Kubernetes or Grafana.
//
//	st, err := sqlstore.Open(ctx, "sqlite://canopy.db", logger)
//	if err != nil { ... }
//	defer st.Close()
//	if err := st.CheckSchema(ctx); err != nil { ... } // refuses a newer schema
//	if err := st.Migrate(ctx); err != nil { ... }
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"canopy.dev/canopy/tenancy"
)

var _ tenancy.Store = (*Store)(nil)

// sqliteBusyTimeout is how long a SQLite connection waits for a lock held by
// another process (canopy migrate beside canopy serve, say) before failing.
const sqliteBusyTimeout = 5 * time.Second

// sqliteMinReaders is the least number of read-only SQLite connections.
const sqliteMinReaders = 16

// Store is a tenancy.Store on SQLite or PostgreSQL. It is safe for concurrent use.
type Store struct {
	dialect dialect
	// db takes writes. On SQLite it holds one connection, so that writers
	// queue in the pool instead of failing with SQLITE_BUSY.
	db *sql.DB
	// rdb takes reads. On SQLite it is a pool of read-only connections that
	// WAL lets run beside the writer; on PostgreSQL it is db.
	rdb *sql.DB
	// stmts holds the statements prepared on SQLite's reader pool, by query
	// text; see readStmt.
	stmts sync.Map
	// lists keeps pages of ListProjects on SQLite (see listcache.go); nil
	// on PostgreSQL.
	lists *listCache
	// vdb holds the connection lists asks the data version on; nil on
	// PostgreSQL.
	vdb    *sql.DB
	target target
	log    *slog.Logger
	// now is the clock; tests replace it.
	now func() time.Time
}

// Open connects to the database named by databaseURL: sqlite://PATH (the
// file is created if missing) or postgres://... (postgresql:// too). It does
// not migrate: call CheckSchema and Migrate. A nil logger discards.
func Open(ctx context.Context, databaseURL string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tg, err := parseDatabaseURL(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{dialect: tg.dialect, target: tg, log: logger, now: time.Now}

	switch tg.dialect {
	case dialectSQLite:
		err = s.openSQLite(ctx)
	case dialectPostgres:
		err = s.openPostgres(ctx)
	}
	if err != nil {
		return nil, err
	}
	logger.Info("store opened", s.describe()...)
	return s, nil
}

// describe returns log attributes naming the database, never a password.
func (s *Store) describe() []any {
	if s.dialect == dialectPostgres {
		cfg := s.target.pgConfig
		return []any{"dialect", "postgres", "host", cfg.Host, "database", cfg.Database}
	}
	return []any{"dialect", "sqlite", "path", s.target.path}
}

// openSQLite opens the writer, then the readers: the writer creates the file
// and switches it to WAL, which is a property of the file.
func (s *Store) openSQLite(ctx context.Context) error {
	// SQLite creates the file but not its folder, and says only "unable to
	// open database file" when the folder is missing.
	if _, err := os.Stat(filepath.Dir(s.target.path)); err != nil {
		return fmt.Errorf("open sqlite path=%q: %w", s.target.path, err)
	}
	w, err := openSQLiteDB(ctx, s.target.path, sqliteParams(true, true))
	if err != nil {
		return fmt.Errorf("open sqlite writer path=%q: %w", s.target.path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)

	r, err := openSQLiteDB(ctx, s.target.path, sqliteParams(false, true))
	if err != nil {
		_ = w.Close()
		return fmt.Errorf("open sqlite readers path=%q: %w", s.target.path, err)
	}
	// More readers than cores: a query waiting for a free connection is
	// handed one in random order by database/sql, which stretched the tail
	// latency of many concurrent requests; an idle reader costs only its
	// file handle and page cache.
	readers := max(sqliteMinReaders, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)

	// The data version connection stands apart from the readers, so that
	// it never takes one of their places.
	v, err := openSQLiteDB(ctx, s.target.path, sqliteParams(false, true))
	if err != nil {
		_ = w.Close()
		_ = r.Close()
		return fmt.Errorf("open sqlite data version path=%q: %w", s.target.path, err)
	}
	v.SetMaxOpenConns(1)
	v.SetMaxIdleConns(1)
	v.SetConnMaxLifetime(0)

	s.db, s.rdb, s.vdb = w, r, v
	s.lists = newListCache(v.Conn)
	return nil
}

// sqliteParams returns the DSN parameters of one kind of SQLite connection.
// Writers begin transactions IMMEDIATE, so that a read-then-write
// transaction cannot fail half-way on a lock upgrade; readers are query-only.
func sqliteParams(writer, foreignKeys bool) string {
	p := []string{
		"_busy_timeout=" + strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10),
		"_foreign_keys=" + strconv.FormatBool(foreignKeys),
		"_synchronous=NORMAL",
	}
	if writer {
		p = append(p, "_journal_mode=WAL", "_txlock=immediate")
	} else {
		p = append(p, "_query_only=true")
	}
	return strings.Join(p, "&")
}

// openSQLiteDB opens and pings one pool on path with DSN parameters params.
func openSQLiteDB(ctx context.Context, path, params string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", path+"?"+params)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// openPostgres opens one pool through pgx's database/sql driver.
func (s *Store) openPostgres(ctx context.Context) error {
	cfg := s.target.pgConfig
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("connect postgres host=%q database=%q: %w", cfg.Host, cfg.Database, err)
	}
	s.db, s.rdb = db, db
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	return nil
}

// Close releases the prepared statements and the connections.
func (s *Store) Close() error {
	var err error
	s.stmts.Range(func(query, st any) bool {
		err = errors.Join(err, st.(*sql.Stmt).Close())
		s.stmts.Delete(query)
		return true
	})
	if s.lists != nil {
		err = errors.Join(err, s.lists.close(), s.vdb.Close())
	}
	err = errors.Join(err, s.db.Close())
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	if err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// q rewrites a query written with ? placeholders for the dialect: PostgreSQL
// wants $1, $2, ... The store's queries hold no ? inside literals.
func (s *Store) q(query string) string {
	if s.dialect != dialectPostgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] != '?' {
			b.WriteByte(query[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// errBadText is returned for text that PostgreSQL cannot store, on SQLite too,
// so that both backends answer the same.
var errBadText = fmt.Errorf("%w: text must be valid UTF-8 without NUL bytes", tenancy.ErrInvalid)

// checkText returns errBadText if a text argument is not valid UTF-8 or holds
// a NUL byte.
func checkText(args []any) error {
	for _, a := range args {
		var text string
		switch v := a.(type) {
		case string:
			text = v
		case *string:
			if v == nil {
				continue
			}
			text = *v
		default:
			continue
		}
		if !utf8.ValidString(text) || strings.IndexByte(text, 0) >= 0 {
			return errBadText
		}
	}
	return nil
}

// exec runs a statement written with ? placeholders, after checkText.
func (s *Store) exec(
	ctx context.Context, q querier, query string, args ...any,
) (sql.Result, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	return q.ExecContext(ctx, s.q(query), args...)
}

// query runs a query written with ? placeholders, after checkText.
func (s *Store) query(
	ctx context.Context, q querier, query string, args ...any,
) (*sql.Rows, error) {
	if err := checkText(args); err != nil {
		return nil, err
	}
	if st := s.readStmt(ctx, q, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, s.q(query), args...)
}

// queryRow runs a one-row query written with ? placeholders, after
// checkText; a refused argument comes out of Scan.
func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) rowScanner {
	if err := checkText(args); err != nil {
		return errRow{err}
	}
	if st := s.readStmt(ctx, q, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, s.q(query), args...)
}

// readStmt returns query prepared on SQLite's reader pool when q is that
// pool, preparing it on first use, or nil to run query unprepared. SQLite
// spends more time parsing and planning a short query than running it; a
// prepared statement is planned once per connection and then only bound and
// stepped. The store's queries are built from fixed fragments, so the set
// of texts, and of statements kept, is small and bounded.
//
// PostgreSQL needs none of this: pgx already caches a prepared statement
// per connection and query text.
func (s *Store) readStmt(ctx context.Context, q querier, query string) *sql.Stmt {
	if s.dialect != dialectSQLite || q != querier(s.rdb) {
		return nil
	}
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		// Running it unprepared reports the same error where it belongs.
		return nil
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt)
	}
	return st
}

// errRow is a row whose Scan fails with err.
type errRow struct{ err error }

// Scan implements rowScanner.
func (r errRow) Scan(...any) error { return r.err }

// forUpdate is the row-lock clause for a read-then-write transaction. SQLite
// needs none: its writer transactions begin IMMEDIATE and so run one at a time.
func (s *Store) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// inTx runs fn in a transaction on the writer, committing if fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// newID returns a random, time-ordered UUID (version 7).
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// stamp is the current time as the store keeps it: UTC, to the microsecond
// (PostgreSQL's precision), so that what is read back equals what was written.
func (s *Store) stamp() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// classify returns the tenancy sentinel that a driver error stands for, or nil.
// Unique violations are conflicts; foreign-key violations mean that the
// referenced project or user does not exist.
func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return tenancy.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			return tenancy.ErrConflict
		case "23503": // foreign_key_violation
			return tenancy.ErrNotFound
		}
		return nil
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return tenancy.ErrConflict
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return tenancy.ErrNotFound
		}
	}
	return nil
}

// wrap names the failed operation and, when the cause is a missing row or a
// constraint, makes errors.Is match the tenancy sentinel too.
func wrap(err error, format string, args ...any) error {
	op := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, tenancy.ErrNotFound)
	}
	if kind := classify(err); kind != nil {
		return fmt.Errorf("%s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// mustAffect turns an UPDATE or DELETE that touched no row into ErrNotFound.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}
