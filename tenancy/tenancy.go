// Package tenancy holds Canopy's domain: users, projects (one tenant namespace
// each), apps (a Deployment and a Service), members and tokens, the errors
// every layer speaks, and the Store interface that persists them.
//
// It imports only the standard library. Storage lives in tenancy/sqlstore,
// the Kubernetes reconciler in tenancy/reconcile and the tenant-scoped PromQL
// proxy in tenancy/promproxy; HTTP lives in package api.
package tenancy

import (
	"errors"
	"time"
)

// Error sentinels shared by the store, the reconciler and the API. The API maps
// each one to an HTTP status in one table.
var (
	// ErrNotFound means the object does not exist or the caller may not see it.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique name or email is already taken.
	ErrConflict = errors.New("already exists")
	// ErrInvalid means the input breaks a rule; wrap it in a *ValidationError to
	// say which fields.
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthorized means the credentials are missing, wrong or spent.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrSchemaTooNew means the database was migrated by a newer Canopy.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
)

// FieldError names one bad field and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every bad field of one request. It unwraps to ErrInvalid.
type ValidationError struct {
	Fields []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	if len(e.Fields) == 1 {
		return "invalid " + e.Fields[0].Field + ": " + e.Fields[0].Message
	}
	return "invalid input in several fields"
}

// Unwrap lets errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// Role is a member's role in a project.
type Role string

// Roles a member can hold.
const (
	RoleOwner  Role = "owner"
	RoleViewer Role = "viewer"
)

// Status is where a project or app stands in its lifecycle.
type Status string

// Lifecycle states: provisioning → ready (or failed with a reason) → deleting.
const (
	StatusProvisioning Status = "provisioning"
	StatusReady        Status = "ready"
	StatusFailed       Status = "failed"
	StatusDeleting     Status = "deleting"
)

// Condition is one observed fact about a project or app, in the style of
// Kubernetes conditions (type ClusterReady, GrafanaReady, ...).
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"` // "True", "False" or "Unknown"
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// User is someone who signed up.
type User struct {
	ID           string
	Email        string // stored lower-cased
	Name         string
	PasswordHash string
	CreatedAt    time.Time
}

// Project is one tenant: one namespace, its apps and its members.
type Project struct {
	ID          string
	Name        string // DNS-1123 label, unique
	Description string
	Namespace   string // prefix + Name
	OwnerID     string
	Status      Status
	Reason      string // why the project failed or is degraded, if it is
	Conditions  []Condition
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Generation grows on every change a user asks for; ObservedGeneration is
	// the last one the reconciler applied.
	Generation         int64
	ObservedGeneration int64
}

// App is a Deployment and a Service inside a project's namespace.
type App struct {
	ID                string
	ProjectID         string
	Name              string // DNS-1123 label, unique within the project
	Image             string
	TargetPort        int
	Replicas          int
	Env               map[string]string
	Status            Status
	Reason            string
	AvailableReplicas int
	Conditions        []Condition
	CreatedAt         time.Time
	UpdatedAt         time.Time
	Generation        int64
	// ObservedGeneration is the last Generation the reconciler applied.
	ObservedGeneration int64
}

// Member is a user's role in a project.
type Member struct {
	ProjectID string
	UserID    string
	Email     string
	Name      string
	Role      Role
	CreatedAt time.Time
}

// ProjectToken is a read-only token scoped to one project, for the query
// proxy (Grafana's data source uses one). Only its hash is stored.
type ProjectToken struct {
	ID         string
	ProjectID  string
	Name       string
	Hash       []byte
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// RefreshToken is one opaque refresh token, stored as a hash. Tokens issued by
// rotating one another share a FamilyID; reusing a spent one revokes the family.
type RefreshToken struct {
	ID        string
	UserID    string
	FamilyID  string
	Hash      []byte
	ExpiresAt time.Time
	SpentAt   *time.Time
	RevokedAt *time.Time
	CreatedAt time.Time
}

// SigningKey is an Ed25519 key that signs access tokens.
type SigningKey struct {
	ID         string // the JWK "kid"
	PrivateKey []byte // ed25519 seed or private key bytes
	CreatedAt  time.Time
}

// Page asks for one page of a list: at most Limit items after Cursor.
type Page struct {
	Limit  int
	Cursor string // opaque; empty for the first page
}

// ProjectFilter narrows ListProjects.
type ProjectFilter struct {
	// MemberID limits the list to projects the user owns or belongs to.
	// Empty means every project (admins).
	MemberID string
	Page     Page
}
