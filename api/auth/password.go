package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id costs. A hash records the costs it was
// made with, so raising them affects only new hashes.
type PasswordParams struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8
	KeyLen  uint32
	SaltLen int
}

// DefaultPasswordParams follow the OWASP recommendation for argon2id
// (19 MiB, two passes, one thread).
var DefaultPasswordParams = PasswordParams{
	Time: 2, Memory: 19 * 1024, Threads: 1, KeyLen: 32, SaltLen: 16,
}

// phcPrefix starts every hash this package writes.
const phcPrefix = "$argon2id$v=19$"

var b64 = base64.RawStdEncoding

// HashPassword returns password hashed with argon2id as a PHC string:
// $argon2id$v=19$m=MEMORY,t=TIME,p=THREADS$SALT$HASH.
func HashPassword(password string, p PasswordParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// DecoyHash returns a well-formed PHC string with the costs of p and a
// random salt and key, which no password matches. Checking a password
// against it costs exactly as much as against a real hash, so an unknown
// account answers in the same time, and making it costs no hashing.
func DecoyHash(p PasswordParams) (string, error) {
	salt, key := make([]byte, p.SaltLen), make([]byte, p.KeyLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("read key: %w", err)
	}
	return fmt.Sprintf("%sm=%d,t=%d,p=%d$%s$%s", phcPrefix, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string hash. It
// takes the same time whether or not it matches. ErrBadHash if hash is
// malformed.
func VerifyPassword(password, hash string) (bool, error) {
	p, salt, want, err := ParsePHC(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Limits on the costs a stored hash may ask for, so that a corrupt row
// cannot make one sign-in allocate gigabytes.
const (
	maxMemoryKiB = 1 << 20
	maxTime      = 16
	maxKeyLen    = 128
)

// ParsePHC reads an argon2id PHC string written by HashPassword and returns
// its costs, salt and key. ErrBadHash if it is anything else.
func ParsePHC(hash string) (PasswordParams, []byte, []byte, error) {
	var p PasswordParams
	rest, ok := strings.CutPrefix(hash, phcPrefix)
	if !ok {
		return p, nil, nil, fmt.Errorf("parse hash prefix: %w", ErrBadHash)
	}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return p, nil, nil, fmt.Errorf("parse hash sections: %w", ErrBadHash)
	}
	if err := parseCosts(parts[0], &p); err != nil {
		return p, nil, nil, err
	}
	salt, err := b64.DecodeString(parts[1])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("parse hash salt: %w", ErrBadHash)
	}
	key, err := b64.DecodeString(parts[2])
	if err != nil || len(key) < 16 || len(key) > maxKeyLen {
		return p, nil, nil, fmt.Errorf("parse hash key: %w", ErrBadHash)
	}
	p.SaltLen, p.KeyLen = len(salt), uint32(len(key))
	return p, salt, key, nil
}

// parseCosts reads "m=...,t=...,p=..." in that order into p.
func parseCosts(s string, p *PasswordParams) error {
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return fmt.Errorf("parse hash costs: %w", ErrBadHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok {
			return fmt.Errorf("parse hash cost %q: %w", name, ErrBadHash)
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("parse hash cost %q: %w", name, ErrBadHash)
		}
		vals[i] = n
	}
	if vals[0] < 8 || vals[0] > maxMemoryKiB || vals[1] < 1 || vals[1] > maxTime ||
		vals[2] < 1 || vals[2] > 255 || vals[0] < 8*vals[2] {
		return fmt.Errorf("parse hash costs out of range: %w", ErrBadHash)
	}
	p.Memory, p.Time, p.Threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	return nil
}
