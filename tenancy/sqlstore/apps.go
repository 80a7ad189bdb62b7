package sqlstore

import (
	"context"
	"fmt"

	"canopy.dev/canopy/tenancy"
)

const appColumns = "id, project_id, name, image, target_port, replicas, env, status, reason, " +
	"available_replicas, conditions, generation, observed_generation, created_at, updated_at"

// CreateApp stores a, filling ID, timestamps, Generation (1), and Status
// (provisioning) when empty. ErrConflict if the project already has an app
// of that name; ErrNotFound if the project does not exist.
func (s *Store) CreateApp(ctx context.Context, a *tenancy.App) error {
	env, err := encodeEnv(a.Env)
	if err != nil {
		return fmt.Errorf("create app name=%q: %w", a.Name, err)
	}
	conditions, err := encodeConditions(a.Conditions)
	if err != nil {
		return fmt.Errorf("create app name=%q: %w", a.Name, err)
	}
	a.ID = newID()
	a.CreatedAt = s.stamp()
	a.UpdatedAt = a.CreatedAt
	a.Generation = 1
	if a.Status == "" {
		a.Status = tenancy.StatusProvisioning
	}

	_, err = s.exec(ctx, s.db,
		`INSERT INTO apps (`+appColumns+`)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.ProjectID, a.Name, a.Image, a.TargetPort, a.Replicas, env, string(a.Status),
		a.Reason, a.AvailableReplicas, conditions, a.Generation, a.ObservedGeneration,
		s.t(a.CreatedAt), s.t(a.UpdatedAt))
	if err != nil {
		return wrap(err, "create app project_id=%q name=%q", a.ProjectID, a.Name)
	}
	return nil
}

// AppByID returns ErrNotFound unless the app exists in that project.
func (s *Store) AppByID(ctx context.Context, projectID, appID string) (*tenancy.App, error) {
	row := s.queryRow(ctx, s.rdb,
		`SELECT `+appColumns+` FROM apps WHERE project_id = ? AND id = ?`, projectID, appID)
	a, err := scanApp(row)
	if err != nil {
		return nil, wrap(err, "get app project_id=%q app_id=%q", projectID, appID)
	}
	return a, nil
}

// ListApps returns one page of a project's apps ordered by creation, and the
// cursor of the next page ("" on the last one). A cursor this store did not
// issue is ErrInvalid.
func (s *Store) ListApps(
	ctx context.Context, projectID string, p tenancy.Page,
) ([]*tenancy.App, string, error) {
	after, hasCursor, err := decodeCursor(p.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("list apps project_id=%q: %w", projectID, err)
	}
	n := limit(p.Limit)

	query := `SELECT ` + appColumns + ` FROM apps WHERE project_id = ?`
	args := []any{projectID}
	if hasCursor {
		cond, condArgs := s.after(after)
		query += ` AND ` + cond
		args = append(args, condArgs...)
	}
	query += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, n+1) // one more than the page tells whether there is a next

	rows, err := s.query(ctx, s.rdb, query, args...)
	if err != nil {
		return nil, "", wrap(err, "list apps project_id=%q", projectID)
	}
	defer rows.Close()
	apps := make([]*tenancy.App, 0, n)
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, "", wrap(err, "scan app")
		}
		apps = append(apps, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", wrap(err, "list apps project_id=%q", projectID)
	}

	if len(apps) <= n {
		return apps, "", nil
	}
	apps = apps[:n]
	last := apps[n-1]
	return apps, cursor{CreatedAt: last.CreatedAt, ID: last.ID}.encode(), nil
}

// UpdateAppSpec changes image and replicas (nil keeps a field), bumps
// Generation and returns the app as stored. ErrNotFound unless the app
// exists in that project.
func (s *Store) UpdateAppSpec(
	ctx context.Context, projectID, appID string, image *string, replicas *int,
) (*tenancy.App, error) {
	row := s.queryRow(ctx, s.db,
		`UPDATE apps SET image = COALESCE(?, image), replicas = COALESCE(?, replicas),
		 generation = generation + 1, updated_at = ?
		 WHERE project_id = ? AND id = ?
		 RETURNING `+appColumns,
		image, replicas, s.t(s.stamp()), projectID, appID)
	a, err := scanApp(row)
	if err != nil {
		return nil, wrap(err, "update app spec project_id=%q app_id=%q", projectID, appID)
	}
	return a, nil
}

// UpdateAppStatus writes what the reconciler observed.
func (s *Store) UpdateAppStatus(ctx context.Context, appID string, st tenancy.AppStatus) error {
	conditions, err := encodeConditions(st.Conditions)
	if err != nil {
		return fmt.Errorf("update app status app_id=%q: %w", appID, err)
	}
	res, err := s.exec(ctx, s.db,
		`UPDATE apps SET status = ?, reason = ?, available_replicas = ?, conditions = ?,
		 observed_generation = ?, updated_at = ?
		 WHERE id = ?`,
		string(st.Status), st.Reason, st.AvailableReplicas, conditions,
		st.ObservedGeneration, s.t(s.stamp()), appID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "update app status app_id=%q", appID)
	}
	return nil
}

// MarkAppDeleting sets status deleting and bumps Generation.
func (s *Store) MarkAppDeleting(ctx context.Context, projectID, appID string) error {
	res, err := s.exec(ctx, s.db,
		`UPDATE apps SET status = ?, generation = generation + 1, updated_at = ?
		 WHERE project_id = ? AND id = ?`,
		string(tenancy.StatusDeleting), s.t(s.stamp()), projectID, appID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "mark app deleting project_id=%q app_id=%q", projectID, appID)
	}
	return nil
}

// DeleteApp removes the app row. ErrNotFound unless it exists in that project.
func (s *Store) DeleteApp(ctx context.Context, projectID, appID string) error {
	res, err := s.exec(ctx, s.db,
		`DELETE FROM apps WHERE project_id = ? AND id = ?`, projectID, appID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "delete app project_id=%q app_id=%q", projectID, appID)
	}
	return nil
}

func scanApp(row rowScanner) (*tenancy.App, error) {
	var (
		a                tenancy.App
		status           string
		env, conditions  jsonText
		created, updated dbTime
	)
	err := row.Scan(&a.ID, &a.ProjectID, &a.Name, &a.Image, &a.TargetPort, &a.Replicas, &env,
		&status, &a.Reason, &a.AvailableReplicas, &conditions, &a.Generation,
		&a.ObservedGeneration, &created, &updated)
	if err != nil {
		return nil, err
	}
	a.Status = tenancy.Status(status)
	a.CreatedAt, a.UpdatedAt = created.Time, updated.Time
	if a.Env, err = decodeEnv(env); err != nil {
		return nil, err
	}
	if a.Conditions, err = decodeConditions(conditions); err != nil {
		return nil, err
	}
	return &a, nil
}
