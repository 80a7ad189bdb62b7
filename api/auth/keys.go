package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"time"

	"canopy.dev/canopy/tenancy"
)

// KeySet holds the key that signs new access tokens and every public key
// that still verifies them (older stored keys, so that a new signing key does
// not sign everybody out).
type KeySet struct {
	signingKID string
	signing    ed25519.PrivateKey
	public     map[string]ed25519.PublicKey
	order      []string // kids, signing key first
}

// NewKeySet returns a set that signs with priv under a kid derived from its
// public key, and verifies with priv's public key and others.
func NewKeySet(priv ed25519.PrivateKey, others ...ed25519.PublicKey) *KeySet {
	ks := &KeySet{signing: priv, public: map[string]ed25519.PublicKey{}}
	ks.signingKID = ks.add(priv.Public().(ed25519.PublicKey))
	for _, pub := range others {
		ks.add(pub)
	}
	return ks
}

// add registers pub and returns its kid.
func (ks *KeySet) add(pub ed25519.PublicKey) string {
	kid := Thumbprint(pub)
	if _, ok := ks.public[kid]; !ok {
		ks.public[kid] = pub
		ks.order = append(ks.order, kid)
	}
	return kid
}

// SigningKID is the kid of the key that signs new tokens.
func (ks *KeySet) SigningKID() string { return ks.signingKID }

// PublicKey returns the verifying key with that kid.
func (ks *KeySet) PublicKey(kid string) (ed25519.PublicKey, bool) {
	pub, ok := ks.public[kid]
	return pub, ok
}

// JWK is one Ed25519 public key in JSON Web Key form (RFC 8037).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns every verifying key, the signing key first.
func (ks *KeySet) JWKS() JWKS {
	set := JWKS{Keys: make([]JWK, 0, len(ks.order))}
	for _, kid := range ks.order {
		set.Keys = append(set.Keys, JWK{
			Kty: "OKP", Crv: "Ed25519", Kid: kid, Alg: "EdDSA", Use: "sig",
			X: base64.RawURLEncoding.EncodeToString(ks.public[kid]),
		})
	}
	return set
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key,
// base64url: a kid that anyone can recompute from the key.
func Thumbprint(pub ed25519.PublicKey) string {
	// RFC 7638: the required members in lexical order, no whitespace.
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` +
		base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// LoadOrCreateSigningKey returns the key set Canopy signs with. The signing
// key is read from keyFile (PEM, PKCS#8 Ed25519) when one is given, else it
// is the newest key in the store, else a new key is generated and stored.
// Every stored key verifies tokens.
func LoadOrCreateSigningKey(
	ctx context.Context, store tenancy.AuthStore, keyFile string,
) (*KeySet, error) {
	stored, err := store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	var others []ed25519.PublicKey
	for _, k := range stored {
		priv, err := privateKeyFromBytes(k.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("load signing key kid=%q: %w", k.ID, err)
		}
		others = append(others, priv.Public().(ed25519.PublicKey))
	}

	// A key file wins and is never copied into the store.
	if keyFile != "" {
		priv, err := ReadKeyFile(keyFile)
		if err != nil {
			return nil, err
		}
		return NewKeySet(priv, others...), nil
	}
	if len(stored) > 0 {
		priv, _ := privateKeyFromBytes(stored[0].PrivateKey)
		return NewKeySet(priv, others...), nil
	}

	// First start: make a key and keep it.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	k := &tenancy.SigningKey{
		ID:         Thumbprint(priv.Public().(ed25519.PublicKey)),
		PrivateKey: priv.Seed(),
		CreatedAt:  time.Now().UTC(),
	}
	if err := store.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	return NewKeySet(priv), nil
}

// ReadKeyFile reads an Ed25519 private key from a PEM file holding a PKCS#8
// "PRIVATE KEY" block (as `openssl genpkey -algorithm ed25519` writes).
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("read key file %q: no PRIVATE KEY block: %w", path, ErrBadKey)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse key file %q: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read key file %q: not an Ed25519 key: %w", path, ErrBadKey)
	}
	return priv, nil
}

// privateKeyFromBytes accepts a 32-byte seed or a 64-byte private key.
func privateKeyFromBytes(b []byte) (ed25519.PrivateKey, error) {
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	default:
		return nil, fmt.Errorf("key of %d bytes: %w", len(b), ErrBadKey)
	}
}
