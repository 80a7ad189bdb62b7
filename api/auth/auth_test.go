package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/sqlstore"
)

var cheap = PasswordParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestPasswordRoundTrip(t *testing.T) {
	hash, err := HashPassword("correct horse", DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not record the default costs", hash)
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsE": false, "": false} {
		if ok, err := VerifyPassword(pw, hash); err != nil || ok != want {
			t.Errorf("verify %q: %v %v, want %v", pw, ok, err, want)
		}
	}
	other, _ := HashPassword("correct horse", DefaultPasswordParams)
	if other == hash {
		t.Errorf("two hashes of one password are equal: salt not random")
	}
}

func TestParsePHCRefusesMalformed(t *testing.T) {
	good, _ := HashPassword("pw", cheap)
	parts := strings.Split(good, "$")
	key := parts[len(parts)-1]
	for _, h := range []string{
		"", "$2a$10$abc", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5",
		phcPrefix + "m=64,t=1$" + key, phcPrefix + "m=64,t=1,p=1$!!$" + key,
		phcPrefix + "m=99999999,t=1,p=1$" + key, phcPrefix + "t=1,m=64,p=1$" + key,
		phcPrefix + "m=64,t=0,p=1$" + key, good + "$extra",
	} {
		if _, _, _, err := ParsePHC(h); !errors.Is(err, ErrBadHash) {
			t.Errorf("ParsePHC(%q) = %v, want ErrBadHash", h, err)
		}
	}
}

func FuzzParsePHC(f *testing.F) {
	good, _ := HashPassword("pw", cheap)
	for _, s := range []string{good, "", phcPrefix, phcPrefix + "m=64,t=1,p=1$$", "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := ParsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrBadHash) {
				t.Fatalf("error %v is not ErrBadHash", err)
			}
			return
		}
		// Whatever parses stays within the bounds a sign-in may spend.
		if p.Memory > maxMemoryKiB || p.Time > maxTime || len(key) > maxKeyLen || len(salt) < 8 {
			t.Fatalf("accepted %q with costs %+v", s, p)
		}
	})
}

func TestKeyedLimiter(t *testing.T) {
	l := NewKeyedLimiter(3, time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("event %d refused", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != 20*time.Second {
		t.Errorf("4th event: %v, wait %v; want refused for 20s (one of 3 per minute)", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Errorf("another key shares the bucket")
	}
	if ok, _ := l.Check("a", now.Add(20*time.Second)); !ok {
		t.Errorf("after 20s one event should be allowed")
	}
	// Check does not take; Take takes even past the limit.
	l.Take("c", now)
	l.Take("c", now)
	l.Take("c", now)
	l.Take("c", now)
	if ok, wait := l.Check("c", now); ok || wait != 40*time.Second {
		t.Errorf("after 4 takes: %v %v, want refused for 40s", ok, wait)
	}
}

func openStore(t *testing.T) *sqlstore.Store {
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)

	first, err := LoadOrCreateSigningKey(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreateSigningKey(ctx, st, "")
	if err != nil || again.SigningKID() != first.SigningKID() {
		t.Fatalf("second start signs with %q, first with %q (%v): the stored key must be reused",
			again.SigningKID(), first.SigningKID(), err)
	}
	stored, _ := st.SigningKeys(ctx)
	if len(stored) != 1 || stored[0].ID != first.SigningKID() {
		t.Errorf("stored keys %+v, want one with kid %s", stored, first.SigningKID())
	}

	// A key file wins; the stored key still verifies older tokens.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	path := filepath.Join(t.TempDir(), "jwt.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := LoadOrCreateSigningKey(ctx, st, path)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.SigningKID() != Thumbprint(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("file key not used for signing")
	}
	if _, ok := fromFile.PublicKey(first.SigningKID()); !ok {
		t.Errorf("stored key dropped from verification")
	}
	if jwks := fromFile.JWKS(); len(jwks.Keys) != 2 || jwks.Keys[0].Kid != fromFile.SigningKID() {
		t.Errorf("JWKS %+v, want the file key first, then the stored one", jwks)
	}
	if stored, _ := st.SigningKeys(ctx); len(stored) != 1 {
		t.Errorf("the file key was copied into the store")
	}

	// A file that is not an Ed25519 PKCS#8 key is refused.
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if _, err := LoadOrCreateSigningKey(ctx, st, bad); err == nil {
		t.Errorf("malformed key file accepted")
	}
}

func TestThumbprintRFC8037(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
	x := "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
	pub, err := b64url(x)
	if err != nil {
		t.Fatal(err)
	}
	if got := Thumbprint(pub); got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("thumbprint %s, want RFC 8037's kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", got)
	}
}

func TestTokensRejectOtherAlgorithms(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	clock := time.Now()
	tokens := NewTokens(NewKeySet(priv), "canopy", func() time.Time { return clock })
	tok, _, err := tokens.Issue(&tenancy.User{ID: "u1", Email: "a@example.com", Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tokens.Verify(tok)
	if err != nil || c.Subject != "u1" || c.Email != "a@example.com" {
		t.Fatalf("verify own token: %+v %v", c, err)
	}
	clock = clock.Add(AccessTokenTTL + time.Minute)
	if _, err := tokens.Verify(tok); !errors.Is(err, tenancy.ErrUnauthorized) {
		t.Errorf("expired token: %v, want ErrUnauthorized", err)
	}
}

func b64url(s string) (ed25519.PublicKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return ed25519.PublicKey(b), err
}

func TestDecoyHashCostsLikeARealOne(t *testing.T) {
	p := PasswordParams{Time: 1, Memory: 1024, Threads: 1, KeyLen: 32, SaltLen: 16}
	decoy, err := DecoyHash(p)
	if err != nil {
		t.Fatal(err)
	}
	real, err := HashPassword("secret", p)
	if err != nil {
		t.Fatal(err)
	}
	dp, _, _, err := ParsePHC(decoy)
	if err != nil {
		t.Fatalf("decoy is not a PHC string: %v", err)
	}
	rp, _, _, _ := ParsePHC(real)
	if dp != rp {
		t.Errorf("decoy costs %+v, a real hash %+v", dp, rp)
	}
	for _, pw := range []string{"", "secret", "canopy-dummy-password"} {
		if ok, err := VerifyPassword(pw, decoy); ok || err != nil {
			t.Errorf("password %q matched the decoy (err %v)", pw, err)
		}
	}
}
