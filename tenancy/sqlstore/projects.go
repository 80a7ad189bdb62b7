package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"canopy.dev/canopy/tenancy"
)

const projectColumns = "id, name, description, namespace, owner_id, status, reason, " +
	"conditions, generation, observed_generation, created_at, updated_at"

// rowScanner is what *sql.Row and *sql.Rows share.
type rowScanner interface {
	Scan(dest ...any) error
}

// CreateProject stores p and makes its owner a member with RoleOwner, in one
// transaction. It fills ID, CreatedAt, UpdatedAt and Generation (1), and
// Status (provisioning) when empty. ErrConflict if the name or namespace is
// taken; ErrNotFound if the owner does not exist.
func (s *Store) CreateProject(ctx context.Context, p *tenancy.Project) error {
	if p.Namespace == "" {
		return fmt.Errorf("create project name=%q: %w", p.Name, &tenancy.ValidationError{
			Fields: []tenancy.FieldError{{Field: "namespace", Message: "is empty"}}})
	}
	conditions, err := encodeConditions(p.Conditions)
	if err != nil {
		return fmt.Errorf("create project name=%q: %w", p.Name, err)
	}
	p.ID = newID()
	p.CreatedAt = s.stamp()
	p.UpdatedAt = p.CreatedAt
	p.Generation = 1
	if p.Status == "" {
		p.Status = tenancy.StatusProvisioning
	}

	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx,
			`INSERT INTO projects (`+projectColumns+`)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Name, p.Description, p.Namespace, p.OwnerID, string(p.Status), p.Reason,
			conditions, p.Generation, p.ObservedGeneration, s.t(p.CreatedAt), s.t(p.UpdatedAt))
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx,
			`INSERT INTO project_members (project_id, user_id, role, created_at)
			 VALUES (?, ?, ?, ?)`,
			p.ID, p.OwnerID, string(tenancy.RoleOwner), s.t(p.CreatedAt))
		return err
	})
	if err != nil {
		return wrap(err, "create project name=%q", p.Name)
	}
	return nil
}

// ProjectByID returns ErrNotFound if there is no such project.
func (s *Store) ProjectByID(ctx context.Context, id string) (*tenancy.Project, error) {
	row := s.queryRow(ctx, s.rdb,
		`SELECT `+projectColumns+` FROM projects WHERE id = ?`, id)
	p, err := scanProject(row)
	if err != nil {
		return nil, wrap(err, "get project id=%q", id)
	}
	return p, nil
}

// ListProjects returns one page ordered by creation, and the cursor of the
// next page ("" on the last one). With MemberID set, it lists the projects
// the user owns or is a member of. A cursor this store did not issue is
// ErrInvalid. On SQLite a page is served from memory while the database
// has not changed since it was read (listcache.go); the caller owns what
// it gets either way.
func (s *Store) ListProjects(
	ctx context.Context, f tenancy.ProjectFilter,
) ([]*tenancy.Project, string, error) {
	if s.lists == nil {
		return s.listProjects(ctx, f)
	}
	version, err := s.lists.current(ctx)
	if err != nil {
		// The page can still be read; the next call opens a new connection.
		s.log.Warn("project list cache bypassed", "error", err)
		return s.listProjects(ctx, f)
	}

	key := pageKey{memberID: f.MemberID, limit: limit(f.Page.Limit), cursor: f.Page.Cursor}
	if projects, next, ok := s.lists.get(version, key); ok {
		return projects, next, nil
	}
	projects, next, err := s.listProjects(ctx, f)
	if err != nil {
		return nil, "", err
	}
	s.lists.put(version, key, projects, next)
	return projects, next, nil
}

// listProjects reads one page of ListProjects from the database.
func (s *Store) listProjects(
	ctx context.Context, f tenancy.ProjectFilter,
) ([]*tenancy.Project, string, error) {
	after, hasCursor, err := decodeCursor(f.Page.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("list projects: %w", err)
	}
	n := limit(f.Page.Limit)

	// Build the WHERE clause from the filters in use.
	var (
		where []string
		args  []any
	)
	if f.MemberID != "" {
		where = append(where, `(owner_id = ? OR id IN
			(SELECT project_id FROM project_members WHERE user_id = ?))`)
		args = append(args, f.MemberID, f.MemberID)
	}
	if hasCursor {
		cond, condArgs := s.after(after)
		where = append(where, cond)
		args = append(args, condArgs...)
	}
	query := `SELECT ` + projectColumns + ` FROM projects`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, n+1) // one more than the page tells whether there is a next

	rows, err := s.query(ctx, s.rdb, query, args...)
	if err != nil {
		return nil, "", wrap(err, "list projects member_id=%q", f.MemberID)
	}
	defer rows.Close()
	projects := make([]*tenancy.Project, 0, n)
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, "", wrap(err, "scan project")
		}
		projects = append(projects, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(err, "list projects member_id=%q", f.MemberID)
	}

	if len(projects) <= n {
		return projects, "", nil
	}
	projects = projects[:n]
	last := projects[n-1]
	return projects, cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode(), nil
}

// UpdateProjectStatus writes what the reconciler observed: status, reason and
// observed generation. It never changes the spec nor the conditions.
func (s *Store) UpdateProjectStatus(
	ctx context.Context, id string, st tenancy.ProjectStatus,
) error {
	res, err := s.exec(ctx, s.db,
		`UPDATE projects SET status = ?, reason = ?, observed_generation = ?, updated_at = ?
		 WHERE id = ?`,
		string(st.Status), st.Reason, st.ObservedGeneration, s.t(s.stamp()), id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "update project status id=%q", id)
	}
	return nil
}

// SetProjectCondition adds c or replaces the condition of the same Type,
// keeping LastTransitionTime when the Status did not change; a zero
// LastTransitionTime means now. A condition that changes nothing writes nothing.
func (s *Store) SetProjectCondition(ctx context.Context, id string, c tenancy.Condition) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var raw jsonText
		err := s.queryRow(ctx, tx,
			`SELECT conditions FROM projects WHERE id = ?`+s.forUpdate(), id).Scan(&raw)
		if err != nil {
			return err
		}
		current, err := decodeConditions(raw)
		if err != nil {
			return err
		}
		next, changed := mergeCondition(current, c, s.stamp())
		if !changed {
			return nil
		}
		encoded, err := encodeConditions(next)
		if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx,
			`UPDATE projects SET conditions = ?, updated_at = ? WHERE id = ?`,
			encoded, s.t(s.stamp()), id)
		return err
	})
	if err != nil {
		return wrap(err, "set project condition id=%q type=%q", id, c.Type)
	}
	return nil
}

// mergeCondition returns cs with c set, and whether anything changed.
func mergeCondition(
	cs []tenancy.Condition, c tenancy.Condition, now time.Time,
) ([]tenancy.Condition, bool) {
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = now
	}
	c.LastTransitionTime = c.LastTransitionTime.UTC()
	for i, old := range cs {
		if old.Type != c.Type {
			continue
		}
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		}
		if sameCondition(old, c) {
			return cs, false
		}
		next := append([]tenancy.Condition(nil), cs...)
		next[i] = c
		return next, true
	}
	return append(cs, c), true
}

// sameCondition reports whether a and b say the same thing since the same time.
func sameCondition(a, b tenancy.Condition) bool {
	return a.Type == b.Type && a.Status == b.Status && a.Reason == b.Reason &&
		a.Message == b.Message && a.LastTransitionTime.Equal(b.LastTransitionTime)
}

// MarkProjectDeleting sets status deleting and bumps Generation.
func (s *Store) MarkProjectDeleting(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db,
		`UPDATE projects SET status = ?, generation = generation + 1, updated_at = ?
		 WHERE id = ?`,
		string(tenancy.StatusDeleting), s.t(s.stamp()), id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "mark project deleting id=%q", id)
	}
	return nil
}

// DeleteProject removes the project; the foreign keys remove its apps,
// members and tokens with it. ErrNotFound if there is no such project.
func (s *Store) DeleteProject(ctx context.Context, id string) error {
	res, err := s.exec(ctx, s.db, `DELETE FROM projects WHERE id = ?`, id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "delete project id=%q", id)
	}
	return nil
}

// projectRow is what scanProject reads one row into. Scan's destinations
// escape to the heap; kept in one struct they cost one allocation, not five.
type projectRow struct {
	p                tenancy.Project
	status           string
	conditions       jsonText
	created, updated dbTime
}

func scanProject(row rowScanner) (*tenancy.Project, error) {
	r := new(projectRow)
	p := &r.p
	err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Namespace, &p.OwnerID, &r.status,
		&p.Reason, &r.conditions, &p.Generation, &p.ObservedGeneration, &r.created, &r.updated)
	if err != nil {
		return nil, err
	}
	p.Status = tenancy.Status(r.status)
	p.CreatedAt, p.UpdatedAt = r.created.Time, r.updated.Time
	if p.Conditions, err = decodeConditions(r.conditions); err != nil {
		return nil, err
	}
	return p, nil
}

// DataVersion returns a value that changes whenever anything is committed to
// the database, by this process or another, so that callers can keep what
// they derived from it until it changes (the API keeps encoded project
// lists). It reports false on PostgreSQL, where no such cheap check exists.
// Whatever a caller derives after the call holds every commit that finished
// before it.
func (s *Store) DataVersion(ctx context.Context) (any, bool, error) {
	if s.lists == nil {
		return nil, false, nil
	}
	v, err := s.lists.current(ctx)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}
