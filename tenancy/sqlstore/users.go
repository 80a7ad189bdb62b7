package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"canopy.dev/canopy/tenancy"
)

const userColumns = "id, email, name, password_hash, created_at"

// CreateUser stores u, filling ID and CreatedAt and lower-casing Email.
// ErrConflict if the email is taken, whatever its case.
func (s *Store) CreateUser(ctx context.Context, u *tenancy.User) error {
	// Checked before lower-casing, which would replace bad bytes silently.
	if err := checkText([]any{u.Email}); err != nil {
		return fmt.Errorf("create user email=%q: %w", u.Email, err)
	}
	u.ID = newID()
	u.Email = strings.ToLower(u.Email)
	u.CreatedAt = s.stamp()

	_, err := s.exec(ctx, s.db,
		`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.PasswordHash, s.t(u.CreatedAt))
	if err != nil {
		return wrap(err, "create user email=%q", u.Email)
	}
	return nil
}

// UserByID returns ErrNotFound if there is no such user.
func (s *Store) UserByID(ctx context.Context, id string) (*tenancy.User, error) {
	row := s.queryRow(ctx, s.rdb,
		`SELECT `+userColumns+` FROM users WHERE id = ?`, id)
	u, err := scanUser(row)
	if err != nil {
		return nil, wrap(err, "get user id=%q", id)
	}
	return u, nil
}

// UserByEmail matches case-insensitively. ErrNotFound if there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (*tenancy.User, error) {
	if err := checkText([]any{email}); err != nil {
		return nil, fmt.Errorf("get user email=%q: %w", email, err)
	}
	row := s.queryRow(ctx, s.rdb,
		`SELECT `+userColumns+` FROM users WHERE email = ?`, strings.ToLower(email))
	u, err := scanUser(row)
	if err != nil {
		return nil, wrap(err, "get user email=%q", email)
	}
	return u, nil
}

func scanUser(row rowScanner) (*tenancy.User, error) {
	var (
		u       tenancy.User
		created dbTime
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = created.Time
	return &u, nil
}
