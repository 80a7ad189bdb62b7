// Package auth owns Canopy's credentials: argon2id password hashes, the
// Ed25519 keys that sign access tokens (and their JWKS), EdDSA access
// tokens, opaque refresh and project tokens stored only as hashes, and the
// keyed rate limiters that guard sign-in.
//
// It knows nothing of HTTP routing; package api calls it. It reads and
// writes the store only through tenancy.AuthStore.
package auth

import "errors"

// Errors returned by this package. Each wraps tenancy.ErrUnauthorized where
// the API must answer 401.
var (
	// ErrBadHash means a stored password hash is not a PHC string this
	// package can read.
	ErrBadHash = errors.New("malformed password hash")
	// ErrBadKey means a signing key file or stored key is unusable.
	ErrBadKey = errors.New("unusable signing key")
)
