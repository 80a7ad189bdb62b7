package auth

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"canopy.dev/canopy/tenancy"
)

// AccessTokenTTL is how long an access token is valid.
const AccessTokenTTL = 15 * time.Minute

// leeway tolerates clock skew with other verifiers (Grafana).
const leeway = 5 * time.Second

// Claims are what an access token says about its user. Grafana's JWT sign-in
// reads email and name.
type Claims struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies EdDSA access tokens.
type Tokens struct {
	keys   *KeySet
	issuer string
	now    func() time.Time
	parser *jwt.Parser

	// verified remembers tokens whose signature checked out, so that a
	// client sending the same token on every request pays for one Ed25519
	// verification, not one per request. Expiry is still checked each time.
	mu       sync.Mutex
	verified map[string]*Claims
}

// maxVerified bounds the cache of verified tokens; it is emptied when full.
const maxVerified = 10000

// NewTokens returns a Tokens signing with keys. issuer goes into the iss
// claim and must match on verification; now is the clock.
func NewTokens(keys *KeySet, issuer string, now func() time.Time) *Tokens {
	return &Tokens{
		keys:   keys,
		issuer: issuer,
		now:    now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithTimeFunc(now),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(issuer),
			jwt.WithLeeway(leeway),
		),
		verified: map[string]*Claims{},
	}
}

// Issue returns a signed access token for u and its lifetime.
func (t *Tokens) Issue(u *tenancy.User) (string, time.Duration, error) {
	now := t.now()
	claims := Claims{
		Email: u.Email,
		Name:  u.Name,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(AccessTokenTTL)),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.keys.SigningKID()
	signed, err := tok.SignedString(t.keys.signing)
	if err != nil {
		return "", 0, fmt.Errorf("sign access token: %w", err)
	}
	return signed, AccessTokenTTL, nil
}

// Verify checks the token's algorithm (EdDSA only), kid, signature, issuer
// and expiry, and returns its claims. Every failure wraps
// tenancy.ErrUnauthorized.
func (t *Tokens) Verify(token string) (*Claims, error) {
	t.mu.Lock()
	c, ok := t.verified[token]
	t.mu.Unlock()
	if ok && t.now().Before(c.ExpiresAt.Add(leeway)) {
		return c, nil
	}

	c, err := t.verify(token)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[token] = c
	t.mu.Unlock()
	return c, nil
}

// verify parses and checks a token without the cache.
func (t *Tokens) verify(token string) (*Claims, error) {
	var claims Claims
	_, err := t.parser.ParseWithClaims(token, &claims, t.keyFor)
	if err != nil {
		return nil, fmt.Errorf("verify access token: %w: %w", tenancy.ErrUnauthorized, err)
	}
	if claims.Subject == "" {
		return nil, fmt.Errorf("verify access token: no subject: %w", tenancy.ErrUnauthorized)
	}
	return &claims, nil
}

// keyFor finds the public key named by the token's kid header.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	kid, _ := tok.Header["kid"].(string)
	pub, ok := t.keys.PublicKey(kid)
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return ed25519.PublicKey(pub), nil
}
