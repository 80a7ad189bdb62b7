package api

import (
	"context"
	"sync"
)

// dataVersioner is a store that can tell cheaply whether anything changed
// since it last answered (sqlstore on SQLite). The version is comparable.
type dataVersioner interface {
	DataVersion(ctx context.Context) (version any, ok bool, err error)
}

// maxCachedLists bounds the encoded lists kept for one data version.
const maxCachedLists = 1024

// listKey names one project list answer: everything the JSON depends on
// besides the stored data and the server's fixed configuration.
type listKey struct {
	memberID string // "" for admins, who all see the same list
	limit    int
	cursor   string
}

// listCache keeps encoded project lists of the newest data version seen.
// A list is served only to a request whose own version check returned the
// version it was kept under, so it holds every commit that finished before
// that request began.
type listCache struct {
	mu      sync.RWMutex
	version any
	lists   map[listKey][]byte
}

// get returns the encoded list kept for version v, or nil.
func (c *listCache) get(v any, k listKey) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.version != v {
		return nil
	}
	return c.lists[k]
}

// put keeps a copy of body under version v, dropping other versions' lists.
func (c *listCache) put(v any, k listKey, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != v || len(c.lists) >= maxCachedLists {
		c.version, c.lists = v, make(map[listKey][]byte)
	}
	c.lists[k] = append([]byte(nil), body...)
}
