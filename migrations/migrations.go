// Package migrations embeds Canopy's SQL schema migrations, one folder per
// dialect (sqlite, postgres), in goose's annotated SQL format. Both folders
// hold the same versions under the same file names; tenancy/sqlstore runs them.
//
// It owns the schema's history and nothing else: no Go code touches the
// database from here.
//
// Rules for a new migration:
//
//   - Write it for both dialects, with the same number and name, and a Down
//     section that keeps every row the Up section kept.
//   - Add a NOT NULL column to a table that holds rows in three migrations:
//     add it nullable, backfill it, then set NOT NULL (00002 to 00004 are the
//     example). On SQLite the last step rebuilds the table; sqlstore runs
//     SQLite migrations with foreign_keys off so that dropping the old table
//     does not cascade, then checks every foreign key.
//   - Teach the migration tests in tenancy/sqlstore (seedRows) what rows look
//     like at the new version: they fill a database at every version and
//     check that each migration, up and down, keeps every row.
package migrations

import (
	"embed"
	"io/fs"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// SQLite returns the migrations for SQLite, at the root of the returned FS.
func SQLite() fs.FS { return sub("sqlite") }

// Postgres returns the migrations for PostgreSQL, at the root of the returned FS.
func Postgres() fs.FS { return sub("postgres") }

// sub returns one dialect's folder; the folders are embedded, so it cannot fail.
func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic("migrations: embedded folder " + dir + " is missing: " + err.Error())
	}
	return f
}
