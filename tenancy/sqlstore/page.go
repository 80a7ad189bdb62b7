package sqlstore

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"canopy.dev/canopy/tenancy"
)

// Page sizes: a zero or negative Limit gets DefaultLimit; more than MaxLimit
// gets MaxLimit.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// limit returns the page size to serve for a requested limit.
func limit(requested int) int {
	switch {
	case requested <= 0:
		return DefaultLimit
	case requested > MaxLimit:
		return MaxLimit
	}
	return requested
}

// cursor is the position after the last row of a page. Lists are ordered by
// (created_at, id), which no two rows share, so the order is stable and a
// page never repeats or skips a row that existed when the first was read.
type cursor struct {
	CreatedAt time.Time
	ID        string
}

// errBadCursor says which field is wrong, for the API's problem answer.
var errBadCursor = &tenancy.ValidationError{Fields: []tenancy.FieldError{{
	Field:   "cursor",
	Message: "is not a cursor returned by this list",
}}}

// encode renders the cursor as opaque URL-safe text.
func (c cursor) encode() string {
	raw := c.CreatedAt.UTC().Format(sqliteTimeLayout) + " " + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reads what encode wrote. Empty text is the first page (ok false).
func decodeCursor(text string) (c cursor, ok bool, err error) {
	if text == "" {
		return cursor{}, false, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return cursor{}, false, fmt.Errorf("decode cursor: %w", errBadCursor)
	}
	stamp, id, found := strings.Cut(string(raw), " ")
	if !found || id == "" || len(id) > 64 || strings.ContainsAny(id, " \x00") {
		return cursor{}, false, fmt.Errorf("decode cursor: %w", errBadCursor)
	}
	at, err := time.Parse(sqliteTimeLayout, stamp)
	if err != nil {
		return cursor{}, false, fmt.Errorf("decode cursor: %w", errBadCursor)
	}
	return cursor{CreatedAt: at, ID: id}, true, nil
}

// after is the WHERE condition, and its arguments, that selects the rows past
// the cursor. Both dialects compare row values.
func (s *Store) after(c cursor) (string, []any) {
	return "(created_at, id) > (?, ?)", []any{s.t(c.CreatedAt), c.ID}
}
