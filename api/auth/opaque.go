package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// ProjectTokenPrefix starts every project token, so that they are told apart
// from access tokens and found by secret scanners.
const ProjectTokenPrefix = "cnp_"

// NewOpaqueToken returns a fresh secret (prefix and 32 random bytes in
// base64url) and the SHA-256 hash under which it is stored.
func NewOpaqueToken(prefix string) (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("read token bytes: %w", err)
	}
	secret := prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashToken(secret), nil
}

// HashToken is the stored form of an opaque token. The secrets are long and
// random, so a plain SHA-256 is enough: there is nothing to brute-force.
func HashToken(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
