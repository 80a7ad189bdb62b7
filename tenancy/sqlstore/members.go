package sqlstore

import (
	"context"
	"fmt"

	"canopy.dev/canopy/tenancy"
)

// memberSelect reads a membership with the user's email and name.
const memberSelect = `SELECT m.project_id, m.user_id, u.email, u.name, m.role, m.created_at
	FROM project_members m JOIN users u ON u.id = m.user_id`

// AddMember stores m, filling CreatedAt. ErrConflict if the user is already a
// member; ErrNotFound if the project or the user does not exist; ErrInvalid
// for a role other than owner or viewer.
func (s *Store) AddMember(ctx context.Context, m *tenancy.Member) error {
	if m.Role != tenancy.RoleOwner && m.Role != tenancy.RoleViewer {
		return fmt.Errorf("add member project_id=%q user_id=%q: %w", m.ProjectID, m.UserID,
			&tenancy.ValidationError{Fields: []tenancy.FieldError{{
				Field: "role", Message: "must be owner or viewer"}}})
	}
	m.CreatedAt = s.stamp()

	_, err := s.exec(ctx, s.db,
		`INSERT INTO project_members (project_id, user_id, role, created_at)
		 VALUES (?, ?, ?, ?)`,
		m.ProjectID, m.UserID, string(m.Role), s.t(m.CreatedAt))
	if err != nil {
		return wrap(err, "add member project_id=%q user_id=%q", m.ProjectID, m.UserID)
	}
	return nil
}

// Member returns the user's membership with email and name, or ErrNotFound.
func (s *Store) Member(ctx context.Context, projectID, userID string) (*tenancy.Member, error) {
	row := s.queryRow(ctx, s.rdb,
		memberSelect+` WHERE m.project_id = ? AND m.user_id = ?`, projectID, userID)
	m, err := scanMember(row)
	if err != nil {
		return nil, wrap(err, "get member project_id=%q user_id=%q", projectID, userID)
	}
	return m, nil
}

// ListMembers returns every member of a project with email and name, oldest
// first; an unknown project has none.
func (s *Store) ListMembers(ctx context.Context, projectID string) ([]*tenancy.Member, error) {
	rows, err := s.query(ctx, s.rdb,
		memberSelect+` WHERE m.project_id = ? ORDER BY m.created_at, m.user_id`, projectID)
	if err != nil {
		return nil, wrap(err, "list members project_id=%q", projectID)
	}
	defer rows.Close()

	members := []*tenancy.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, wrap(err, "scan member")
		}
		members = append(members, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list members project_id=%q", projectID)
	}
	return members, nil
}

// RemoveMember returns ErrNotFound if the user was not a member.
func (s *Store) RemoveMember(ctx context.Context, projectID, userID string) error {
	res, err := s.exec(ctx, s.db,
		`DELETE FROM project_members WHERE project_id = ? AND user_id = ?`, projectID, userID)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "remove member project_id=%q user_id=%q", projectID, userID)
	}
	return nil
}

func scanMember(row rowScanner) (*tenancy.Member, error) {
	var (
		m       tenancy.Member
		role    string
		created dbTime
	)
	if err := row.Scan(&m.ProjectID, &m.UserID, &m.Email, &m.Name, &role, &created); err != nil {
		return nil, err
	}
	m.Role = tenancy.Role(role)
	m.CreatedAt = created.Time
	return &m, nil
}
