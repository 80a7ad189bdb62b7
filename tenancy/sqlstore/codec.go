package sqlstore

import (
	"encoding/json"
	"fmt"
	"time"

	"canopy.dev/canopy/tenancy"
)

// sqliteTimeLayout is how SQLite columns hold timestamps: UTC, fixed width,
// so that comparing the text compares the times.
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

// t encodes a timestamp argument: text on SQLite, time.Time on PostgreSQL.
func (s *Store) t(v time.Time) any {
	v = v.UTC().Truncate(time.Microsecond)
	if s.dialect == dialectSQLite {
		return v.Format(sqliteTimeLayout)
	}
	return v
}

// tp encodes a nullable timestamp argument.
func (s *Store) tp(v *time.Time) any {
	if v == nil {
		return nil
	}
	return s.t(*v)
}

// dbTime scans a timestamp column from either dialect; Valid is false for NULL.
type dbTime struct {
	Time  time.Time
	Valid bool
}

// Scan implements sql.Scanner.
func (d *dbTime) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*d = dbTime{}
		return nil
	case time.Time:
		*d = dbTime{Time: x.UTC(), Valid: true}
		return nil
	case string:
		return d.parse(x)
	case []byte:
		return d.parse(string(x))
	}
	return fmt.Errorf("scan timestamp: unexpected %T", v)
}

// parse reads the store's own layout, or SQLite's datetime() output, which
// goose's version table holds.
func (d *dbTime) parse(text string) error {
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		var err2 error
		if t, err2 = time.Parse(time.DateTime, text); err2 != nil {
			return fmt.Errorf("scan timestamp: %w", err)
		}
	}
	*d = dbTime{Time: t.UTC(), Valid: true}
	return nil
}

// ptr returns the time, or nil for NULL.
func (d dbTime) ptr() *time.Time {
	if !d.Valid {
		return nil
	}
	t := d.Time
	return &t
}

// jsonText scans a JSON column, text on SQLite and jsonb on PostgreSQL.
type jsonText []byte

// Scan implements sql.Scanner.
func (j *jsonText) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*j = nil
	case string:
		*j = []byte(x)
	case []byte:
		*j = append((*j)[:0], x...)
	default:
		return fmt.Errorf("scan json: unexpected %T", v)
	}
	return nil
}

// encodeConditions renders conditions for a JSON column; none is [].
func encodeConditions(cs []tenancy.Condition) (string, error) {
	if len(cs) == 0 {
		return "[]", nil
	}
	utc := make([]tenancy.Condition, len(cs))
	for i, c := range cs {
		c.LastTransitionTime = c.LastTransitionTime.UTC()
		utc[i] = c
	}
	b, err := json.Marshal(utc)
	if err != nil {
		return "", fmt.Errorf("encode conditions: %w", err)
	}
	return string(b), nil
}

// decodeConditions reads a JSON column; an empty list comes back as nil.
func decodeConditions(b jsonText) ([]tenancy.Condition, error) {
	var cs []tenancy.Condition
	if len(b) > 0 && string(b) != "[]" {
		if err := json.Unmarshal(b, &cs); err != nil {
			return nil, fmt.Errorf("decode conditions: %w", err)
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	return cs, nil
}

// encodeEnv renders an app's environment for a JSON column; none is {}.
func encodeEnv(env map[string]string) (string, error) {
	if len(env) == 0 {
		return "{}", nil
	}
	for k, v := range env {
		if err := checkText([]any{k, v}); err != nil {
			return "", fmt.Errorf("encode env: %w", err)
		}
	}
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("encode env: %w", err)
	}
	return string(b), nil
}

// decodeEnv reads a JSON column; an empty environment comes back as nil.
func decodeEnv(b jsonText) (map[string]string, error) {
	var env map[string]string
	if len(b) > 0 && string(b) != "{}" {
		if err := json.Unmarshal(b, &env); err != nil {
			return nil, fmt.Errorf("decode env: %w", err)
		}
	}
	if len(env) == 0 {
		return nil, nil
	}
	return env, nil
}
