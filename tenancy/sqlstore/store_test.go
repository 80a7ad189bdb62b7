package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"canopy.dev/canopy/internal/testenv"
)

// backend opens an empty, unmigrated store on a real database.
type backend struct {
	name string
	open func(t testing.TB) *Store
}

// backends are the databases every store test runs on.
var backends = []backend{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// openSQLite opens a store on a new SQLite file in a temporary folder.
func openSQLite(t testing.TB) *Store {
	t.Helper()
	return openURL(t, "sqlite://"+filepath.Join(t.TempDir(), "canopy.db"))
}

// openPostgres opens a store on a new PostgreSQL database (testenv skips
// without a server, or fails in CI).
func openPostgres(t testing.TB) *Store {
	t.Helper()
	return openURL(t, testenv.PostgresURL(t))
}

func openURL(t testing.TB, url string) *Store {
	t.Helper()
	st, err := Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// migrated opens a store with open and applies every migration.
func migrated(open func(t testing.TB) *Store) func(t testing.TB) *Store {
	return func(t testing.TB) *Store {
		t.Helper()
		st := open(t)
		if err := st.Migrate(context.Background()); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		return st
	}
}

// tables lists every table of the schema, children before parents.
var tables = []string{
	"signing_keys", "refresh_tokens", "project_tokens", "project_members", "apps",
	"projects", "users",
}

// emptied returns a constructor that hands out st emptied of every row with
// its clock reset: cheaper than a new database per test, and as isolated
// while the tests run one after another.
func emptied(st *Store) func(t testing.TB) *Store {
	return func(t testing.TB) *Store {
		t.Helper()
		for _, table := range tables {
			if _, err := st.db.Exec(`DELETE FROM ` + table); err != nil {
				t.Fatalf("empty table %s: %v", table, err)
			}
		}
		st.now = time.Now
		return st
	}
}

func TestContract(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			testContract(t, emptied(migrated(b.open)(t)))
		})
	}
}
