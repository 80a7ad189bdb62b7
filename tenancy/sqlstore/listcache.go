package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"canopy.dev/canopy/tenancy"
)

// Reading a page of projects from SQLite costs more than anything else the
// list endpoint does: the engine and the driver decode twelve columns of
// every row. Pages change only when the database does, so on SQLite the
// store keeps the pages it has read and serves them again until the
// database changes.
//
// "Until the database changes" is decided by SQLite itself, not by the
// store's own writes: PRAGMA data_version, asked on a connection that never
// writes, changes whenever any other connection commits, in this process
// or in another one (canopy migrate beside canopy serve, the sqlite3 shell,
// a restored backup). A write path the store forgets, or a row changed
// behind its back, cannot leave a stale page behind.
//
// The order of steps makes it safe against concurrent commits. A reader asks
// the version first and only then runs its query, so its page holds every
// commit the version holds (it may hold later ones too: never older). A page
// is served only to a reader whose own check returned the same version, and
// two checks return the same version only if nothing was committed between
// them: every commit that finished before that reader began is in the page.
// A page read at a version older than the newest one seen is not kept.
//
// The check costs a read transaction. Readers that arrive while a check
// runs share the next one: it starts after all of them arrived, so it holds
// every commit that finished before any of them began, and under load one
// check serves many requests instead of queueing them one by one.
//
// PostgreSQL gets no cache: several Canopy replicas may write one database,
// and nothing in one process learns of another's commits without asking
// the server, which is the cost the cache exists to avoid.

// maxCachedPages bounds the pages kept for one version; past it the store
// starts again from none. A page is at most MaxLimit projects.
const maxCachedPages = 1024

// pageKey names one ListProjects call.
type pageKey struct {
	memberID string
	limit    int
	cursor   string
}

// cachedPage is one page as ListProjects returned it.
type cachedPage struct {
	projects []*tenancy.Project
	next     string
}

// dataVersion identifies one state of the database. epoch counts the
// connections the version was read on: data_version is a count kept by one
// connection, which starts again on a new one.
type dataVersion struct {
	epoch uint64
	n     int64
}

// listCache keeps the pages of ListProjects for the newest data version.
type listCache struct {
	// open opens a connection to ask the version on.
	open func(ctx context.Context) (*sql.Conn, error)

	// mu guards conn, ask and epoch: one version check at a time.
	mu   sync.Mutex
	conn *sql.Conn
	// ask is PRAGMA data_version prepared on conn.
	ask   *sql.Stmt
	epoch uint64
	// newest is the last version current returned.
	newest atomic.Pointer[dataVersion]

	// batchMu guards next and checking: next gathers the readers that wait
	// for a check that has not started yet.
	batchMu  sync.Mutex
	next     *versionBatch
	checking bool

	// pagesMu guards version and pages: the pages read at version.
	pagesMu sync.RWMutex
	version dataVersion
	pages   map[pageKey]cachedPage
}

// newListCache returns a cache that asks the data version on connections
// opened by open.
func newListCache(open func(ctx context.Context) (*sql.Conn, error)) *listCache {
	return &listCache{open: open, pages: make(map[pageKey]cachedPage)}
}

// versionBatch is one version check shared by every reader that joined it
// before it started.
type versionBatch struct {
	done chan struct{}
	v    dataVersion
	err  error
}

// current returns the version of the database now: every commit that
// finished before the call is in it.
func (c *listCache) current(ctx context.Context) (dataVersion, error) {
	c.batchMu.Lock()
	b := c.next
	if b == nil {
		b = &versionBatch{done: make(chan struct{})}
		c.next = b
	}
	if !c.checking {
		c.checking = true
		go c.runChecks()
	}
	c.batchMu.Unlock()

	select {
	case <-b.done:
		return b.v, b.err
	case <-ctx.Done():
		return dataVersion{}, fmt.Errorf("wait for data version: %w", ctx.Err())
	}
}

// runChecks runs one check per waiting batch until no reader waits.
func (c *listCache) runChecks() {
	for {
		c.batchMu.Lock()
		b := c.next
		c.next = nil
		if b == nil {
			c.checking = false
			c.batchMu.Unlock()
			return
		}
		c.batchMu.Unlock()

		b.v, b.err = c.check(context.Background())
		close(b.done)
	}
}

// check asks the version on the shared connection, opening it if needed.
func (c *listCache) check(ctx context.Context) (dataVersion, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	if c.conn == nil {
		if err := c.connect(ctx); err != nil {
			return dataVersion{}, err
		}
	}

	// The pragma answers from the connection at once. It runs without any
	// request's context, so that a cancelled request cannot break a
	// connection shared by every request.
	var n int64
	if err := c.ask.QueryRowContext(ctx).Scan(&n); err != nil {
		_ = c.disconnect()
		return dataVersion{}, fmt.Errorf("read data version: %w", err)
	}
	v := dataVersion{epoch: c.epoch, n: n}
	c.newest.Store(&v)
	return v, nil
}

// get returns a copy of the page read at version v, if it is kept.
func (c *listCache) get(v dataVersion, k pageKey) ([]*tenancy.Project, string, bool) {
	c.pagesMu.RLock()
	page, ok := c.pages[k]
	ok = ok && c.version == v
	c.pagesMu.RUnlock()
	if !ok {
		return nil, "", false
	}
	return cloneProjects(page.projects), page.next, true
}

// put keeps a copy of a page read at version v, unless a newer version has
// been seen since v was read: its pages would be dropped at the next put.
func (c *listCache) put(v dataVersion, k pageKey, projects []*tenancy.Project, next string) {
	page := cachedPage{projects: cloneProjects(projects), next: next}

	if newest := c.newest.Load(); newest == nil || *newest != v {
		return
	}

	c.pagesMu.Lock()
	defer c.pagesMu.Unlock()
	if c.version != v || len(c.pages) >= maxCachedPages {
		clear(c.pages)
		c.version = v
	}
	c.pages[k] = page
}

// connect opens the version connection and starts a new epoch; c.mu is held.
func (c *listCache) connect(ctx context.Context) error {
	conn, err := c.open(ctx)
	if err != nil {
		return fmt.Errorf("open data version connection: %w", err)
	}
	ask, err := conn.PrepareContext(ctx, `PRAGMA data_version`)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("prepare data version: %w", err)
	}
	c.conn, c.ask = conn, ask
	c.epoch++
	return nil
}

// disconnect closes the version connection; c.mu is held. The connection
// goes back to its pool, or away if it is broken.
func (c *listCache) disconnect() error {
	if c.conn == nil {
		return nil
	}
	err := errors.Join(c.ask.Close(), c.conn.Close())
	c.conn, c.ask = nil, nil
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("close data version connection: %w", err)
	}
	return nil
}

// close releases the version connection.
func (c *listCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.disconnect()
}

// cloneProjects copies projects deeply enough that the caller may change
// any field, conditions included, without touching the original.
func cloneProjects(projects []*tenancy.Project) []*tenancy.Project {
	out := make([]*tenancy.Project, len(projects))
	copies := make([]tenancy.Project, len(projects))
	for i, p := range projects {
		copies[i] = *p
		copies[i].Conditions = slices.Clone(p.Conditions)
		out[i] = &copies[i]
	}
	return out
}
