package scrape

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"
)

// tokenFile caches a bearer token file's content until the file changes.
// Projected service-account tokens are rotated by the kubelet swapping a
// symlink, which changes what os.Stat (following links) reports, so a stat
// per scrape notices rotation at the cost of one system call. A rewrite that
// keeps both time and size (coarse file-system clocks) is caught by reading
// the file again after tokenMaxAge anyway.
type tokenFile struct {
	mu     sync.Mutex
	path   string
	mod    time.Time
	size   int64
	readAt time.Time
	token  string
}

// tokenMaxAge is how long a token is trusted without reading its file again.
const tokenMaxAge = time.Minute

// token returns the current content of the token file at path.
func (s *Scraper) token(path string) (string, error) {
	s.mu.Lock()
	tf := s.tokens[path]
	if tf == nil {
		tf = &tokenFile{path: path}
		s.tokens[path] = tf
	}
	s.mu.Unlock()
	return tf.get()
}

// get stats the file and re-reads it when its time or size changed.
func (tf *tokenFile) get() (string, error) {
	fi, err := os.Stat(tf.path)
	if err != nil {
		return "", fmt.Errorf("stat token file path=%q: %w: %w", tf.path, ErrToken, err)
	}

	tf.mu.Lock()
	defer tf.mu.Unlock()
	if tf.token != "" && fi.ModTime().Equal(tf.mod) && fi.Size() == tf.size &&
		time.Since(tf.readAt) < tokenMaxAge {
		return tf.token, nil
	}
	b, err := os.ReadFile(tf.path)
	if err != nil {
		return "", fmt.Errorf("read token file path=%q: %w: %w", tf.path, ErrToken, err)
	}
	token := string(bytes.TrimSpace(b))
	if token == "" {
		return "", fmt.Errorf("read token file path=%q: file is empty: %w", tf.path, ErrToken)
	}
	tf.token, tf.mod, tf.size, tf.readAt = token, fi.ModTime(), fi.Size(), time.Now()
	return token, nil
}
