package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pressly/goose/v3"

	"canopy.dev/canopy/migrations"
	"canopy.dev/canopy/tenancy"
)

// The migrations these tests know about. A new migration must be added here,
// with what seedRows writes at its version.
const (
	vInitial          = 1 // every table
	vNamespaceAdd     = 2 // projects.namespace, nullable
	vNamespaceFill    = 3 // backfilled from the name
	vNamespaceNotNull = 4 // NOT NULL and unique
)

func TestMigrationsAreKnown(t *testing.T) {
	lite, err := fs.Glob(migrations.SQLite(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	pg, err := fs.Glob(migrations.Postgres(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lite, pg) {
		t.Fatalf("sqlite migrations %v differ from postgres migrations %v", lite, pg)
	}

	st := openSQLite(t)
	known, err := st.knownVersions()
	if err != nil {
		t.Fatalf("known versions: %v", err)
	}
	got := ids(known, func(s source) string { return fmt.Sprint(s.version) })
	if want := []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
		t.Fatalf("embedded migrations %v, tests know %v: teach seedRows the new ones", got, want)
	}
}

// TestMigrationsUpDownUp walks every migration up, all the way down and up
// again, one step at a time, with rows added at every version on the way:
// no step may lose a row, except the last step down, which drops the tables.
func TestMigrationsUpDownUp(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			top := int64(vNamespaceNotNull)

			climb := func(round string) {
				for v := int64(0); v < top; v++ {
					if v > 0 {
						seedRows(t, st, v, fmt.Sprintf("%s-v%d", round, v))
					}
					before := snapshot(t, st)
					upTo(t, st, v+1)
					assertKept(t, before, snapshot(t, st), fmt.Sprintf("%s: up to %d", round, v+1))
				}
				seedRows(t, st, top, round+"-top")
			}

			climb("first")
			for v := top; v > 0; v-- {
				before := snapshot(t, st)
				if err := st.MigrateDown(ctx); err != nil {
					t.Fatalf("down from %d: %v", v, err)
				}
				after := snapshot(t, st)
				if v == vInitial {
					if len(after) != 0 {
						t.Fatalf("down to 0 left tables %v", slices.Collect(maps.Keys(after)))
					}
					continue
				}
				assertKept(t, before, after, fmt.Sprintf("down to %d", v-1))
				seedRows(t, st, v-1, fmt.Sprintf("down-v%d", v-1))
			}
			if err := st.MigrateDown(ctx); err == nil {
				t.Error("migrate down at version 0 succeeded, want an error")
			}
			climb("second")

			// The store works on the result and reads the migrated rows.
			f := tenancy.ProjectFilter{Page: tenancy.Page{Limit: 100}}
			projects, _, err := st.ListProjects(ctx, f)
			if err != nil {
				t.Fatalf("list projects after the round trip: %v", err)
			}
			if want := 2 * 4; len(projects) != want { // two projects per seed, four seeds
				t.Errorf("listed %d projects after the round trip, want %d", len(projects), want)
			}
			for _, p := range projects {
				if p.Namespace == "" {
					t.Errorf("project %s has no namespace", p.Name)
				}
			}
			u := mustUser(t, st, "after@example.com")
			mustProject(t, st, u, "after")
		})
	}
}

// TestMigrationUpgradeKeepsRows fills a database at the version before each
// migration, with rows written at every earlier version too, applies the
// migration and checks that every row and value is still there.
func TestMigrationUpgradeKeepsRows(t *testing.T) {
	for _, b := range backends {
		for target := int64(vInitial); target <= vNamespaceNotNull; target++ {
			t.Run(fmt.Sprintf("%s/to_%d", b.name, target), func(t *testing.T) {
				st := b.open(t)
				for v := int64(0); v < target-1; v++ {
					if v > 0 {
						seedRows(t, st, v, fmt.Sprintf("v%d", v))
					}
					upTo(t, st, v+1)
				}
				if target > 1 {
					seedRows(t, st, target-1, fmt.Sprintf("v%d", target-1))
				}

				before := snapshot(t, st)
				upTo(t, st, target)
				after := snapshot(t, st)
				assertKept(t, before, after, fmt.Sprintf("up to %d", target))
				checkNamespaces(t, st, before, after, target)
			})
		}
	}
}

// checkNamespaces checks what the namespace migrations promise.
func checkNamespaces(t *testing.T, st *Store, before, after tableRows, v int64) {
	t.Helper()
	if v < vNamespaceFill {
		return
	}
	for i, row := range after["projects"] {
		old := before["projects"][i]["namespace"]
		want := old
		if old == "NULL" {
			want = "canopy-" + row["name"] // the backfill, worked out from the name
		}
		if row["namespace"] != want {
			t.Errorf("project %s: namespace %q after %d, want %q",
				row["name"], row["namespace"], v, want)
		}
	}
	if v < vNamespaceNotNull {
		return
	}
	_, err := st.db.Exec(`INSERT INTO projects
		(id, name, owner_id, status, created_at, updated_at)
		SELECT 'p-null', 'null-ns', owner_id, 'ready', created_at, updated_at
		FROM projects LIMIT 1`)
	if err == nil {
		t.Error("a project without a namespace was accepted after the NOT NULL migration")
	}
}

// TestNaiveNotNullColumnFails shows why 00002-00004 take three steps: adding
// a NOT NULL column without a default in one statement fails on a table that
// holds rows, and leaves the rows as they were.
func TestNaiveNotNullColumnFails(t *testing.T) {
	const naive = `ALTER TABLE projects ADD COLUMN namespace TEXT NOT NULL`
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			upTo(t, st, vInitial)
			seedRows(t, st, vInitial, "naive")
			before := snapshot(t, st)

			if _, err := st.db.ExecContext(ctx, naive); err == nil {
				t.Fatal("one-step ADD COLUMN ... NOT NULL succeeded on a populated table")
			} else {
				t.Logf("one-step migration fails as expected: %v", err)
			}
			after := snapshot(t, st)
			assertKept(t, before, after, "failed naive migration")
			if _, ok := after["projects"][0]["namespace"]; ok {
				t.Error("the failed migration left a namespace column behind")
			}
		})
	}

	// The control: PostgreSQL accepts the same statement on an empty table,
	// so the rows are what make it fail. (SQLite refuses it even then.)
	t.Run("postgres_empty_table", func(t *testing.T) {
		ctx := context.Background()
		st := openPostgres(t)
		upTo(t, st, vInitial)
		if _, err := st.db.ExecContext(ctx, naive); err != nil {
			t.Fatalf("on an empty table: %v", err)
		}
	})
}

func TestCheckSchema(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)

			// A fresh database is fine, and checking it creates nothing.
			if err := st.CheckSchema(ctx); err != nil {
				t.Fatalf("check a fresh database: %v", err)
			}
			if exists, err := st.tableExists(ctx, goose.DefaultTablename); err != nil || exists {
				t.Fatalf("checking created the version table (exists=%v, err=%v)", exists, err)
			}

			// Migrating twice is fine.
			for range 2 {
				if err := st.Migrate(ctx); err != nil {
					t.Fatalf("migrate: %v", err)
				}
			}
			if err := st.CheckSchema(ctx); err != nil {
				t.Fatalf("check a migrated database: %v", err)
			}

			// A newer Canopy recorded a migration this binary lacks.
			newer := int64(vNamespaceNotNull + 1)
			_, err := st.db.ExecContext(ctx, st.q(`INSERT INTO `+goose.DefaultTablename+
				` (version_id, is_applied) VALUES (?, ?)`), newer, true)
			if err != nil {
				t.Fatalf("record a newer migration: %v", err)
			}
			for name, call := range map[string]func(context.Context) error{
				"CheckSchema": st.CheckSchema,
				"Migrate":     st.Migrate,
				"MigrateDown": st.MigrateDown,
			} {
				if err := call(ctx); !errors.Is(err, tenancy.ErrSchemaTooNew) {
					t.Errorf("%s on a newer schema: %v, want ErrSchemaTooNew", name, err)
				}
			}
			var out bytes.Buffer
			if err := st.MigrationStatus(ctx, &out); err != nil {
				t.Fatalf("status: %v", err)
			}
			if !hasStatusLine(out.String(), fmt.Sprint(newer), "unknown") {
				t.Errorf("status does not show the unknown migration:\n%s", out.String())
			}
			// Nothing was rolled back.
			if n := len(snapshot(t, st)); n != len(tables) {
				t.Errorf("%d tables left after refused migrations, want %d", n, len(tables))
			}
		})
	}
}

func TestMigrationStatus(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			st := b.open(t)
			upTo(t, st, vNamespaceAdd)

			var out bytes.Buffer
			if err := st.MigrationStatus(ctx, &out); err != nil {
				t.Fatalf("status: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 1+vNamespaceNotNull {
				t.Fatalf("status has %d lines, want a header and %d:\n%s",
					len(lines), vNamespaceNotNull, out.String())
			}
			for v := 1; v <= vNamespaceNotNull; v++ {
				f := strings.Fields(lines[v])
				want := "pending"
				if v <= vNamespaceAdd {
					want = "applied"
				}
				if f[0] != fmt.Sprint(v) || f[1] != want || !strings.HasPrefix(f[len(f)-1],
					fmt.Sprintf("%05d_", v)) {
					t.Errorf("status line %q, want version %d %s", lines[v], v, want)
				}
			}
		})
	}
}

// hasStatusLine reports whether status shows version in state.
func hasStatusLine(status, version, state string) bool {
	for line := range strings.Lines(status) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == version && f[1] == state {
			return true
		}
	}
	return false
}

// upTo migrates st up to version v and fails t on error.
func upTo(t *testing.T, st *Store, v int64) {
	t.Helper()
	ctx := context.Background()
	err := st.withProvider(ctx, func(p *goose.Provider) error {
		_, err := p.UpTo(ctx, v)
		return err
	})
	if err != nil {
		t.Fatalf("migrate up to %d: %v", v, err)
	}
}

// tableRows holds every row of every table, each column's value as text.
type tableRows = map[string][]map[string]string

// seedRows writes rows into every table as the schema stands at version v,
// with plain SQL (the store's code knows only the latest schema). Ids and
// names carry tag, so that seeds never clash.
func seedRows(t *testing.T, st *Store, v int64, tag string) {
	t.Helper()
	ctx := context.Background()
	at := st.t(time.Date(2026, 2, 3, 4, 5, 6, 789000, time.UTC))
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := st.db.ExecContext(ctx, st.q(query), args...); err != nil {
			t.Fatalf("seed at version %d: %s: %v", v, strings.Fields(query)[2], err)
		}
	}
	id := func(kind string, n int) string { return fmt.Sprintf("%s-%s-%d", kind, tag, n) }

	for n := 1; n <= 2; n++ {
		exec(`INSERT INTO users (id, email, name, password_hash, created_at)
			VALUES (?, ?, ?, ?, ?)`,
			id("u", n), id("u", n)+"@example.com", "User "+tag, "$argon2id$"+tag, at)
	}
	for n := 1; n <= 2; n++ {
		name := id("p", n)
		cols := `id, name, description, owner_id, status, reason, conditions, generation,
			observed_generation, created_at, updated_at`
		args := []any{name, name, "it's \"seeded\"", id("u", 1), "ready", "",
			`[{"type":"ClusterReady","status":"True"}]`, 3, 2, at, at}
		switch {
		case v >= vNamespaceNotNull:
			cols += ", namespace"
			args = append(args, "canopy-"+name)
		case v >= vNamespaceAdd && n == 2:
			// One project with a namespace of its own, which the backfill keeps;
			// the other is left NULL for it.
			cols += ", namespace"
			args = append(args, "custom-"+name)
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")
		exec(`INSERT INTO projects (`+cols+`) VALUES (`+marks+`)`, args...)

		exec(`INSERT INTO apps (id, project_id, name, image, target_port, replicas, env, status,
			reason, available_replicas, conditions, generation, observed_generation, created_at,
			updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id("a", n), name, "api", "nginx:1.27", 8080, n, `{"K":"v"}`, "ready", "", n, `[]`,
			1, 1, at, at)
		exec(`INSERT INTO project_members (project_id, user_id, role, created_at)
			VALUES (?, ?, ?, ?)`, name, id("u", 1), "owner", at)
		exec(`INSERT INTO project_members (project_id, user_id, role, created_at)
			VALUES (?, ?, ?, ?)`, name, id("u", 2), "viewer", at)
		exec(`INSERT INTO project_tokens (id, project_id, name, hash, created_at, last_used_at)
			VALUES (?, ?, ?, ?, ?, ?)`, id("t", n), name, "grafana", []byte(id("t", n)), at, at)
	}
	exec(`INSERT INTO refresh_tokens (id, user_id, family_id, hash, expires_at, spent_at,
		revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		id("r", 1), id("u", 1), id("f", 1), []byte(id("r", 1)), at, at, nil, at)
	exec(`INSERT INTO signing_keys (id, private_key, created_at) VALUES (?, ?, ?)`,
		id("k", 1), []byte{0, 1, 2, 0xfe}, at)
}

// snapshot reads every row of every table that exists, each value rendered
// as text (NULL for null), ordered by the first two columns.
func snapshot(t *testing.T, st *Store) tableRows {
	t.Helper()
	ctx := context.Background()
	out := tableRows{}
	for _, table := range tables {
		exists, err := st.tableExists(ctx, table)
		if err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		if !exists {
			continue
		}
		var args []any
		if st.dialect == dialectPostgres {
			// SELECT * changes shape across migrations: no cached statement.
			args = append(args, pgx.QueryExecModeSimpleProtocol)
		}
		rows, err := st.db.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY 1, 2`, args...)
		if err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		out[table] = []map[string]string{}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("snapshot %s: %v", table, err)
			}
			row := map[string]string{}
			for i, c := range cols {
				row[c] = render(vals[i])
			}
			out[table] = append(out[table], row)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("snapshot %s: %v", table, err)
		}
		rows.Close()
	}
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("%x", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// backfilled lists the columns a migration fills: a NULL there may become a
// value (checkNamespaces checks which).
var backfilled = map[string]bool{"projects.namespace": true}

// assertKept fails t unless every table and row of before is in after, with
// the same value in every column both have, backfilled NULLs excepted.
func assertKept(t *testing.T, before, after tableRows, what string) {
	t.Helper()
	for table, rows := range before {
		got, ok := after[table]
		if !ok {
			t.Fatalf("%s: table %s is gone", what, table)
		}
		if len(got) != len(rows) {
			t.Fatalf("%s: table %s holds %d rows, had %d", what, table, len(got), len(rows))
		}
		for i, row := range rows {
			for col, val := range row {
				if val == "NULL" && backfilled[table+"."+col] {
					continue
				}
				if now, ok := got[i][col]; ok && now != val {
					t.Errorf("%s: %s row %d column %s changed from %q to %q",
						what, table, i, col, val, now)
				}
			}
		}
	}
}
