package sqlstore

import (
	"context"

	"canopy.dev/canopy/tenancy"
)

// CreateProjectToken stores t, filling ID and CreatedAt. ErrNotFound if the
// project does not exist; ErrConflict if another token has the same hash.
func (s *Store) CreateProjectToken(ctx context.Context, t *tenancy.ProjectToken) error {
	t.ID = newID()
	t.CreatedAt = s.stamp()

	_, err := s.exec(ctx, s.db,
		`INSERT INTO project_tokens (id, project_id, name, hash, created_at, last_used_at)
		 VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.ProjectID, t.Name, t.Hash, s.t(t.CreatedAt), s.tp(t.LastUsedAt))
	if err != nil {
		return wrap(err, "create project token project_id=%q", t.ProjectID)
	}
	return nil
}

// ProjectTokenByHash returns ErrNotFound if no live token has that hash.
// Tokens do not expire: deleting one is what ends it.
func (s *Store) ProjectTokenByHash(
	ctx context.Context, hash []byte,
) (*tenancy.ProjectToken, error) {
	var (
		t              tenancy.ProjectToken
		created, lastU dbTime
	)
	err := s.queryRow(ctx, s.rdb,
		`SELECT id, project_id, name, hash, created_at, last_used_at
		 FROM project_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.ProjectID, &t.Name, &t.Hash, &created, &lastU)
	if err != nil {
		return nil, wrap(err, "get project token")
	}
	t.CreatedAt, t.LastUsedAt = created.Time, lastU.ptr()
	return &t, nil
}

// ListProjectTokens returns a project's tokens, oldest first, without their hashes.
func (s *Store) ListProjectTokens(
	ctx context.Context, projectID string,
) ([]*tenancy.ProjectToken, error) {
	rows, err := s.query(ctx, s.rdb,
		`SELECT id, project_id, name, created_at, last_used_at FROM project_tokens
		 WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, wrap(err, "list project tokens project_id=%q", projectID)
	}
	defer rows.Close()

	tokens := []*tenancy.ProjectToken{}
	for rows.Next() {
		var (
			t              tenancy.ProjectToken
			created, lastU dbTime
		)
		if err := rows.Scan(&t.ID, &t.ProjectID, &t.Name, &created, &lastU); err != nil {
			return nil, wrap(err, "scan project token")
		}
		t.CreatedAt, t.LastUsedAt = created.Time, lastU.ptr()
		tokens = append(tokens, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list project tokens project_id=%q", projectID)
	}
	return tokens, nil
}

// DeleteProjectToken returns ErrNotFound unless the token is in that project.
func (s *Store) DeleteProjectToken(ctx context.Context, projectID, tokenID string) error {
	res, err := s.exec(ctx, s.db,
		`DELETE FROM project_tokens WHERE project_id = ? AND id = ?`, projectID, tokenID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "delete project token project_id=%q token_id=%q", projectID, tokenID)
	}
	return nil
}
