package api

import (
	"net/url"
	"strconv"
	"time"

	"canopy.dev/canopy/tenancy"
)

// links are the paths of a resource and its relatives.
type links struct {
	Self       string `json:"self"`
	Next       string `json:"next,omitempty"`
	Project    string `json:"project,omitempty"`
	Apps       string `json:"apps,omitempty"`
	Members    string `json:"members,omitempty"`
	Tokens     string `json:"tokens,omitempty"`
	Usage      string `json:"usage,omitempty"`
	Prometheus string `json:"prometheus,omitempty"`
	Projects   string `json:"projects,omitempty"`
}

// userJSON is a user as the API shows it.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"createdAt"`
	Links     links     `json:"links"`
}

func (s *server) userJSON(u *tenancy.User) userJSON {
	return userJSON{
		ID: u.ID, Email: u.Email, Name: u.Name, Admin: s.admins[u.Email], CreatedAt: u.CreatedAt,
		Links: links{Self: "/api/v1/users/me", Projects: "/api/v1/projects"},
	}
}

// projectJSON is a project in a list; projectDetails adds its apps and
// dashboards.
type projectJSON struct {
	ID                 string              `json:"id"`
	Name               string              `json:"name"`
	Description        string              `json:"description,omitempty"`
	Namespace          string              `json:"namespace"`
	Status             tenancy.Status      `json:"status"`
	Reason             string              `json:"reason,omitempty"`
	Role               tenancy.Role        `json:"role,omitempty"`
	Conditions         []tenancy.Condition `json:"conditions"`
	Generation         int64               `json:"generation"`
	ObservedGeneration int64               `json:"observedGeneration"`
	CreatedAt          time.Time           `json:"createdAt"`
	UpdatedAt          time.Time           `json:"updatedAt"`
	Links              links               `json:"links"`
}

type projectDetails struct {
	projectJSON
	Apps       []appJSON   `json:"apps"`
	Dashboards []Dashboard `json:"dashboards"`
}

// projectsPrefix is the path of every project's, before its id.
const projectsPrefix = "/api/v1/projects/"

func projectPath(id string) string { return projectsPrefix + url.PathEscape(id) }

func (s *server) projectJSON(p *tenancy.Project) projectJSON {
	self := projectPath(p.ID)
	conds := append([]tenancy.Condition{}, p.Conditions...)
	if !s.cfg.ClusterConfigured {
		conds = append(conds, noClusterCondition(p))
	}
	return projectJSON{
		ID: p.ID, Name: p.Name, Description: p.Description, Namespace: p.Namespace,
		Status: p.Status, Reason: p.Reason, Conditions: conds,
		Generation: p.Generation, ObservedGeneration: p.ObservedGeneration,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
		Links: links{
			Self: self, Apps: self + "/apps", Members: self + "/members", Tokens: self + "/tokens",
			Usage: self + "/usage", Prometheus: self + "/prometheus",
		},
	}
}

// ConditionClusterReady is the condition type that says whether the
// project's namespace exists in the cluster.
const ConditionClusterReady = "ClusterReady"

// noClusterMessage is the message of noClusterCondition, before and after
// the namespace.
var noClusterMessage = [2]string{
	"No Kubernetes cluster is configured, so the namespace ",
	" will not be created; the project stays provisioning.",
}

// noClusterCondition says why a project will stay provisioning.
func noClusterCondition(p *tenancy.Project) tenancy.Condition {
	return tenancy.Condition{
		Type: ConditionClusterReady, Status: "False", Reason: "NoClusterConfigured",
		Message:            noClusterMessage[0] + p.Namespace + noClusterMessage[1],
		LastTransitionTime: p.CreatedAt,
	}
}

// appJSON is an app as the API shows it.
type appJSON struct {
	ID                 string              `json:"id"`
	ProjectID          string              `json:"projectId"`
	Name               string              `json:"name"`
	Image              string              `json:"image"`
	TargetPort         int                 `json:"targetPort"`
	Replicas           int                 `json:"replicas"`
	AvailableReplicas  int                 `json:"availableReplicas"`
	Env                map[string]string   `json:"env,omitempty"`
	Status             tenancy.Status      `json:"status"`
	Reason             string              `json:"reason,omitempty"`
	Conditions         []tenancy.Condition `json:"conditions"`
	Generation         int64               `json:"generation"`
	ObservedGeneration int64               `json:"observedGeneration"`
	CreatedAt          time.Time           `json:"createdAt"`
	UpdatedAt          time.Time           `json:"updatedAt"`
	Links              links               `json:"links"`
}

func appPath(projectID, appID string) string {
	return projectPath(projectID) + "/apps/" + url.PathEscape(appID)
}

func toAppJSON(a *tenancy.App) appJSON {
	return appJSON{
		ID: a.ID, ProjectID: a.ProjectID, Name: a.Name, Image: a.Image, TargetPort: a.TargetPort,
		Replicas: a.Replicas, AvailableReplicas: a.AvailableReplicas, Env: a.Env,
		Status: a.Status, Reason: a.Reason,
		Conditions: append([]tenancy.Condition{}, a.Conditions...),
		Generation: a.Generation, ObservedGeneration: a.ObservedGeneration,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		Links: links{Self: appPath(a.ProjectID, a.ID), Project: projectPath(a.ProjectID)},
	}
}

// memberJSON is a project member.
type memberJSON struct {
	UserID    string       `json:"userId"`
	Email     string       `json:"email"`
	Name      string       `json:"name,omitempty"`
	Role      tenancy.Role `json:"role"`
	CreatedAt time.Time    `json:"createdAt"`
	Links     links        `json:"links"`
}

func toMemberJSON(m *tenancy.Member) memberJSON {
	return memberJSON{
		UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role, CreatedAt: m.CreatedAt,
		Links: links{
			Self:    projectPath(m.ProjectID) + "/members/" + url.PathEscape(m.UserID),
			Project: projectPath(m.ProjectID),
		},
	}
}

// tokenJSON is a project token without its secret; Token is set only in
// the answer to its creation.
type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Token      string     `json:"token,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	Links      links      `json:"links"`
}

func toTokenJSON(t *tenancy.ProjectToken) tokenJSON {
	return tokenJSON{
		ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt,
		Links: links{
			Self:    projectPath(t.ProjectID) + "/tokens/" + url.PathEscape(t.ID),
			Project: projectPath(t.ProjectID),
		},
	}
}

// list is one page of a collection.
type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
	Links      links  `json:"links"`
}

// pageLinks links a page to itself and to the next one.
func pageLinks(base string, limit int, cursor, next string) links {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	l := links{Self: base + "?" + q.Encode()}
	if next != "" {
		q.Set("cursor", next)
		l.Next = base + "?" + q.Encode()
	}
	return l
}
