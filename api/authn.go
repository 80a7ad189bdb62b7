package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
)

// registerRequest is the body of POST /auth/register.
type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

// loginRequest is the body of POST /auth/login.
type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// refreshRequest is the body of POST /auth/refresh and /auth/logout.
type refreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

// tokenPair answers login and refresh.
type tokenPair struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int    `json:"expiresIn"`
}

// wrongCredentials is the one answer to an unknown email and a wrong password.
var wrongCredentials = fail(tenancy.ErrUnauthorized, "The email or the password is wrong.")

func (s *server) register(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	email, err := validateRegistration(&req)
	if err != nil {
		s.problem(w, r, err)
		return
	}

	hash, err := auth.HashPassword(req.Password, s.cfg.PasswordParams)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	u := &tenancy.User{Email: email, Name: strings.TrimSpace(req.Name), PasswordHash: hash}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		if errors.Is(err, tenancy.ErrConflict) {
			err = failCause(tenancy.ErrConflict, "An account with this email already exists.", err)
		}
		s.problem(w, r, err)
		return
	}
	created(w, "/api/v1/users/me", s.userJSON(u))
}

// validateRegistration checks the fields the document cannot express and
// returns the normalised email.
func validateRegistration(req *registerRequest) (string, error) {
	var fields []tenancy.FieldError
	email, err := normalizeEmail(req.Email)
	if err != nil {
		fields = append(fields, field("email", "must be an email address"))
	}
	if n := len([]rune(req.Password)); n < 10 || n > 256 {
		fields = append(fields, field("password", "must be 10 to 256 characters"))
	}
	if strings.TrimSpace(req.Name) == "" {
		fields = append(fields, field("name", "must not be empty"))
	}
	if fields != nil {
		return "", invalid(fields...)
	}
	return email, nil
}

// normalizeEmail accepts a bare address and lower-cases it.
func normalizeEmail(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != strings.TrimSpace(s) || a.Name != "" {
		return "", fmt.Errorf("parse email: %w", tenancy.ErrInvalid)
	}
	return strings.ToLower(a.Address), nil
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	now := s.now()
	account := strings.ToLower(strings.TrimSpace(req.Email))

	// Every attempt counts against the address; only failures against the
	// account, so that its owner is not locked out by a neighbour's typos.
	if ok, wait := s.byAddr.Allow(clientAddr(r), now); !ok {
		s.problem(w, r, rateLimited(wait, "Too many sign-in attempts from this address."))
		return
	}
	if ok, wait := s.byUser.Check(account, now); !ok {
		s.problem(w, r, rateLimited(wait, "Too many failed sign-ins for this account."))
		return
	}

	u, err := s.checkPassword(r.Context(), account, req.Password)
	if err != nil {
		if errors.Is(err, tenancy.ErrUnauthorized) {
			s.byUser.Take(account, now)
		}
		s.problem(w, r, err)
		return
	}
	pair, err := s.issue(r.Context(), u, "")
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pair)
}

// checkPassword returns the user if the password is right. An unknown
// account costs the same hash as a known one and gets the same error.
func (s *server) checkPassword(ctx context.Context, email, password string) (*tenancy.User, error) {
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("find user: %w", err)
	}
	hash := s.dummy
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := auth.VerifyPassword(password, hash)
	if err != nil {
		return nil, fmt.Errorf("verify password: %w", err)
	}
	if !ok || u == nil {
		return nil, wrongCredentials
	}
	return u, nil
}

func rateLimited(wait time.Duration, detail string) error {
	return &apiError{kind: errRateLimited, detail: detail + " Try again later.", retryAfter: wait}
}

// clientAddr is the peer's IP address.
//
// TODO(api): behind a reverse proxy every client shares the proxy's address;
// trusting X-Forwarded-For needs a configured list of trusted proxies.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// issue makes an access token and a refresh token; an empty family starts
// a new sign-in.
func (s *server) issue(ctx context.Context, u *tenancy.User, family string) (*tokenPair, error) {
	access, ttl, err := s.tokens.Issue(u)
	if err != nil {
		return nil, err
	}
	secret, hash, err := auth.NewOpaqueToken("")
	if err != nil {
		return nil, err
	}
	if family == "" {
		if family, _, err = auth.NewOpaqueToken(""); err != nil {
			return nil, err
		}
	}
	rt := &tenancy.RefreshToken{
		UserID: u.ID, FamilyID: family, Hash: hash, ExpiresAt: s.now().Add(s.cfg.RefreshTTL),
	}
	if err := s.store.CreateRefreshToken(ctx, rt); err != nil {
		return nil, fmt.Errorf("store refresh token: %w", err)
	}
	return &tokenPair{
		AccessToken: access, RefreshToken: secret,
		TokenType: "Bearer", ExpiresIn: int(ttl.Seconds()),
	}, nil
}

var badRefresh = fail(tenancy.ErrUnauthorized,
	"The refresh token is unknown, expired, spent or revoked; sign in again.")

func (s *server) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	ctx, now := r.Context(), s.now()

	rt, err := s.store.RefreshTokenByHash(ctx, auth.HashToken(req.RefreshToken))
	if err != nil {
		s.problem(w, r, orUnauthorized(err, "find refresh token", badRefresh.detail))
		return
	}
	if rt.RevokedAt != nil || !now.Before(rt.ExpiresAt) {
		s.problem(w, r, badRefresh)
		return
	}

	// A spent token presented again means it was copied: end the sign-in.
	// Spending is atomic, so of two concurrent refreshes one loses and
	// counts as reuse too.
	if rt.SpentAt != nil {
		s.problem(w, r, s.revokeFamily(ctx, rt, now))
		return
	}
	if err := s.store.SpendRefreshToken(ctx, rt.ID, now); err != nil {
		if isNotFound(err) {
			err = s.revokeFamily(ctx, rt, now)
		}
		s.problem(w, r, err)
		return
	}

	u, err := s.store.UserByID(ctx, rt.UserID)
	if err != nil {
		s.problem(w, r, orUnauthorized(err, "find user", badRefresh.detail))
		return
	}
	pair, err := s.issue(ctx, u, rt.FamilyID)
	if err != nil {
		s.problem(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pair)
}

// revokeFamily ends every token of rt's sign-in and returns the answer.
func (s *server) revokeFamily(ctx context.Context, rt *tenancy.RefreshToken, now time.Time) error {
	if err := s.store.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
		return fmt.Errorf("revoke refresh family: %w", err)
	}
	s.log.WarnContext(ctx, "spent refresh token reused; sign-in revoked",
		"user_id", rt.UserID, "family_id", rt.FamilyID)
	return failCause(tenancy.ErrUnauthorized,
		"This refresh token was already used; every token of this sign-in is revoked.",
		errors.New("refresh token reuse"))
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := decodeJSON(r, &req); err != nil {
		s.problem(w, r, err)
		return
	}
	rt, err := s.store.RefreshTokenByHash(r.Context(), auth.HashToken(req.RefreshToken))
	if err != nil && !isNotFound(err) {
		s.problem(w, r, err)
		return
	}
	if rt != nil {
		if err := s.store.RevokeRefreshFamily(r.Context(), rt.FamilyID, s.now()); err != nil {
			s.problem(w, r, fmt.Errorf("revoke refresh family: %w", err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	u, err := s.store.UserByID(r.Context(), p.UserID)
	if err != nil {
		const gone = "The account of this token no longer exists."
		s.problem(w, r, orUnauthorized(err, "find user", gone))
		return
	}
	writeJSON(w, http.StatusOK, s.userJSON(u))
}

// orUnauthorized answers 401 for a missing row, else wraps err.
func orUnauthorized(err error, what, detail string) error {
	if isNotFound(err) {
		return failCause(tenancy.ErrUnauthorized, detail, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNotFound(err error) bool { return errors.Is(err, tenancy.ErrNotFound) }
