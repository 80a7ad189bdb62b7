package tenancy

import (
	"context"
	"time"
)

// Store persists Canopy's state. tenancy/sqlstore implements it on SQLite and
// on PostgreSQL with the same behaviour; one contract test suite checks both.
//
// Methods return ErrNotFound for a missing row (never a nil value with a nil
// error), ErrConflict for a taken unique name, and wrap every other cause.
type Store interface {
	UserStore
	AuthStore
	ProjectStore
	AppStore
	MemberStore
	ProjectTokenStore

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error
}

// UserStore keeps accounts.
type UserStore interface {
	// CreateUser stores u, filling ID and CreatedAt. ErrConflict if the email is taken.
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns ErrNotFound if there is no such user.
	UserByID(ctx context.Context, id string) (*User, error)
	// UserByEmail matches case-insensitively. ErrNotFound if there is none.
	UserByEmail(ctx context.Context, email string) (*User, error)
}

// AuthStore keeps refresh tokens and signing keys.
type AuthStore interface {
	// CreateRefreshToken stores t, filling ID and CreatedAt.
	CreateRefreshToken(ctx context.Context, t *RefreshToken) error
	// RefreshTokenByHash returns ErrNotFound if no token has that hash.
	RefreshTokenByHash(ctx context.Context, hash []byte) (*RefreshToken, error)
	// SpendRefreshToken marks the token spent at now, atomically: it returns
	// ErrNotFound if it was already spent or revoked, so that two concurrent
	// refreshes with one token cannot both succeed.
	SpendRefreshToken(ctx context.Context, id string, now time.Time) error
	// RevokeRefreshFamily revokes every token of the family.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) error

	// SigningKeys returns every stored key, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// CreateSigningKey stores k. ErrConflict if the ID is taken.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
}

// ProjectStore keeps projects.
type ProjectStore interface {
	// CreateProject stores p and makes its owner a member with RoleOwner, in one
	// transaction. It fills ID, CreatedAt, UpdatedAt and Generation.
	// ErrConflict if the name is taken.
	CreateProject(ctx context.Context, p *Project) error
	// ProjectByID returns ErrNotFound if there is no such project.
	ProjectByID(ctx context.Context, id string) (*Project, error)
	// ListProjects returns one page ordered by creation, and the cursor of the
	// next page ("" on the last one).
	ListProjects(ctx context.Context, f ProjectFilter) ([]*Project, string, error)
	// UpdateProjectStatus writes what the reconciler observed; it never
	// changes what the user asked for, nor the conditions.
	UpdateProjectStatus(ctx context.Context, id string, st ProjectStatus) error
	// SetProjectCondition adds c or replaces the condition of the same Type,
	// keeping LastTransitionTime when the Status did not change. The
	// reconciler and the Grafana sync each own their condition types.
	SetProjectCondition(ctx context.Context, id string, c Condition) error
	// MarkProjectDeleting sets status deleting and bumps Generation.
	MarkProjectDeleting(ctx context.Context, id string) error
	// DeleteProject removes the project, its apps, members and tokens.
	DeleteProject(ctx context.Context, id string) error
}

// ProjectStatus is what the reconciler writes back for a project.
type ProjectStatus struct {
	Status             Status
	Reason             string
	ObservedGeneration int64
}

// AppStore keeps apps.
type AppStore interface {
	// CreateApp stores a, filling ID, timestamps and Generation.
	// ErrConflict if the project already has an app of that name.
	CreateApp(ctx context.Context, a *App) error
	// AppByID returns ErrNotFound unless the app exists in that project.
	AppByID(ctx context.Context, projectID, appID string) (*App, error)
	// ListApps returns one page of a project's apps ordered by creation.
	ListApps(ctx context.Context, projectID string, p Page) ([]*App, string, error)
	// UpdateAppSpec changes image and replicas (nil keeps a field) and bumps Generation.
	UpdateAppSpec(ctx context.Context, projectID, appID string, image *string,
		replicas *int) (*App, error)
	// UpdateAppStatus writes what the reconciler observed.
	UpdateAppStatus(ctx context.Context, appID string, st AppStatus) error
	// MarkAppDeleting sets status deleting and bumps Generation.
	MarkAppDeleting(ctx context.Context, projectID, appID string) error
	// DeleteApp removes the app row.
	DeleteApp(ctx context.Context, projectID, appID string) error
}

// AppStatus is what the reconciler writes back for an app.
type AppStatus struct {
	Status             Status
	Reason             string
	AvailableReplicas  int
	Conditions         []Condition
	ObservedGeneration int64
}

// MemberStore keeps project membership.
type MemberStore interface {
	// AddMember stores m. ErrConflict if the user is already a member.
	AddMember(ctx context.Context, m *Member) error
	// Member returns the user's membership, or ErrNotFound.
	Member(ctx context.Context, projectID, userID string) (*Member, error)
	// ListMembers returns every member of a project with email and name.
	ListMembers(ctx context.Context, projectID string) ([]*Member, error)
	// RemoveMember returns ErrNotFound if the user was not a member.
	RemoveMember(ctx context.Context, projectID, userID string) error
}

// ProjectTokenStore keeps project-scoped read-only tokens.
type ProjectTokenStore interface {
	// CreateProjectToken stores t, filling ID and CreatedAt.
	CreateProjectToken(ctx context.Context, t *ProjectToken) error
	// ProjectTokenByHash returns ErrNotFound if no live token has that hash.
	ProjectTokenByHash(ctx context.Context, hash []byte) (*ProjectToken, error)
	// ListProjectTokens returns a project's tokens without their hashes.
	ListProjectTokens(ctx context.Context, projectID string) ([]*ProjectToken, error)
	// DeleteProjectToken returns ErrNotFound unless the token is in that project.
	DeleteProjectToken(ctx context.Context, projectID, tokenID string) error
}
