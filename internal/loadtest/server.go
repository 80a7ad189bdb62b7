package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"canopy.dev/canopy/api"
	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/sqlstore"
)

// ProjectsPerUser is how many projects the loaded user owns.
const ProjectsPerUser = 20

// Bare is the reference handler: a fixed small JSON answer, no routing.
func Bare() http.Handler {
	body := []byte(`{"status":"ok"}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// Canopy opens and migrates the store at databaseURL, seeds a user owning
// ProjectsPerUser projects, and returns the API handler, an access token of
// that user and a function that closes the store. The access log is
// formatted as in production and written nowhere.
func Canopy(ctx context.Context, databaseURL string) (http.Handler, string, func(), error) {
	st, err := sqlstore.Open(ctx, databaseURL, nil)
	if err != nil {
		return nil, "", nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return nil, "", nil, fmt.Errorf("migrate store: %w", err)
	}
	keys, err := auth.LoadOrCreateSigningKey(ctx, st, "")
	if err != nil {
		_ = st.Close()
		return nil, "", nil, err
	}
	h, err := api.New(api.Config{
		Store: st, Keys: keys, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		_ = st.Close()
		return nil, "", nil, fmt.Errorf("build API: %w", err)
	}
	token, err := seed(ctx, st, keys)
	if err != nil {
		_ = st.Close()
		return nil, "", nil, err
	}
	return h, token, func() { _ = st.Close() }, nil
}

// seed stores the user and its projects and signs an access token.
func seed(ctx context.Context, st tenancy.Store, keys *auth.KeySet) (string, error) {
	hash, err := auth.HashPassword("load test password", auth.DefaultPasswordParams)
	if err != nil {
		return "", err
	}
	u := &tenancy.User{Email: "load@example.com", Name: "Load", PasswordHash: hash}
	if err := st.CreateUser(ctx, u); err != nil {
		return "", fmt.Errorf("seed user: %w", err)
	}
	for i := range ProjectsPerUser {
		name := fmt.Sprintf("load-%02d", i)
		p := &tenancy.Project{Name: name, Namespace: "canopy-" + name, OwnerID: u.ID,
			Status: tenancy.StatusProvisioning, Description: "project " + name}
		if err := st.CreateProject(ctx, p); err != nil {
			return "", fmt.Errorf("seed project: %w", err)
		}
	}
	token, _, err := auth.NewTokens(keys, "canopy", time.Now).Issue(u)
	return token, err
}
