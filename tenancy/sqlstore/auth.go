package sqlstore

import (
	"context"
	"fmt"
	"time"

	"canopy.dev/canopy/tenancy"
)

const refreshColumns = "id, user_id, family_id, hash, expires_at, spent_at, revoked_at, created_at"

// CreateRefreshToken stores t, filling ID and CreatedAt.
// ErrNotFound if the user does not exist.
func (s *Store) CreateRefreshToken(ctx context.Context, t *tenancy.RefreshToken) error {
	t.ID = newID()
	t.CreatedAt = s.stamp()
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Microsecond)

	_, err := s.exec(ctx, s.db,
		`INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.FamilyID, t.Hash, s.t(t.ExpiresAt),
		s.tp(t.SpentAt), s.tp(t.RevokedAt), s.t(t.CreatedAt))
	if err != nil {
		return wrap(err, "create refresh token user_id=%q", t.UserID)
	}
	return nil
}

// RefreshTokenByHash returns ErrNotFound if no token has that hash, spent,
// revoked and expired tokens included: the caller decides what they mean.
func (s *Store) RefreshTokenByHash(
	ctx context.Context, hash []byte,
) (*tenancy.RefreshToken, error) {
	var (
		t                                tenancy.RefreshToken
		expires, spent, revoked, created dbTime
	)
	err := s.queryRow(ctx, s.rdb,
		`SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, hash).
		Scan(&t.ID, &t.UserID, &t.FamilyID, &t.Hash, &expires, &spent, &revoked, &created)
	if err != nil {
		return nil, wrap(err, "get refresh token")
	}
	t.ExpiresAt, t.CreatedAt = expires.Time, created.Time
	t.SpentAt, t.RevokedAt = spent.ptr(), revoked.ptr()
	return &t, nil
}

// SpendRefreshToken marks the token spent at now in one conditional UPDATE:
// of two concurrent calls with one token, exactly one succeeds, and the other
// gets ErrNotFound, as does any call on a spent, revoked or unknown token.
func (s *Store) SpendRefreshToken(ctx context.Context, id string, now time.Time) error {
	res, err := s.exec(ctx, s.db,
		`UPDATE refresh_tokens SET spent_at = ?
		 WHERE id = ? AND spent_at IS NULL AND revoked_at IS NULL`,
		s.t(now), id)
	if err == nil {
		err = mustAffect(res)
	}
	if err != nil {
		return wrap(err, "spend refresh token id=%q", id)
	}
	return nil
}

// RevokeRefreshFamily revokes every token of the family not revoked yet. An
// unknown family is not an error: there is nothing left to revoke.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error {
	_, err := s.exec(ctx, s.db,
		`UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`,
		s.t(now), familyID)
	if err != nil {
		return wrap(err, "revoke refresh family family_id=%q", familyID)
	}
	return nil
}

// SigningKeys returns every stored key, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]tenancy.SigningKey, error) {
	rows, err := s.query(ctx, s.rdb,
		`SELECT id, private_key, created_at FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, wrap(err, "list signing keys")
	}
	defer rows.Close()

	var keys []tenancy.SigningKey
	for rows.Next() {
		var (
			k       tenancy.SigningKey
			created dbTime
		)
		if err := rows.Scan(&k.ID, &k.PrivateKey, &created); err != nil {
			return nil, wrap(err, "scan signing key")
		}
		k.CreatedAt = created.Time
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list signing keys")
	}
	return keys, nil
}

// CreateSigningKey stores k, filling CreatedAt if it is zero. ErrConflict if
// the ID is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k *tenancy.SigningKey) error {
	if k.ID == "" {
		return fmt.Errorf("create signing key: %w", &tenancy.ValidationError{
			Fields: []tenancy.FieldError{{Field: "id", Message: "is empty"}}})
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = s.stamp()
	}
	k.CreatedAt = k.CreatedAt.UTC().Truncate(time.Microsecond)

	_, err := s.exec(ctx, s.db,
		`INSERT INTO signing_keys (id, private_key, created_at) VALUES (?, ?, ?)`,
		k.ID, k.PrivateKey, s.t(k.CreatedAt))
	if err != nil {
		return wrap(err, "create signing key id=%q", k.ID)
	}
	return nil
}
