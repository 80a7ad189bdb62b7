package grafanasync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/grafana/grafana-openapi-client-go/client/orgs"
	"github.com/grafana/grafana-openapi-client-go/models"

	"canopy.dev/canopy/tenancy"
)

// viewerRole is the Grafana role every project member gets: dashboards are
// Canopy's to change, not the members'.
const viewerRole = "Viewer"

// asError is errors.As, named so that call sites read as questions.
func asError(err error, target any) bool { return errors.As(err, target) }

// syncMembers makes the organization's users the project's members, as
// Viewers, matched by email; users who are not members leave, except the
// sync's own admin account. It returns the number of members.
func (s *Syncer) syncMembers(ctx context.Context, orgID int64, p *tenancy.Project) (int, error) {
	members, err := s.store.ListMembers(ctx, p.ID)
	if err != nil {
		return 0, fmt.Errorf("list members of project_id=%q: %w", p.ID, err)
	}
	got, err := s.api.Orgs.GetOrgUsers(orgID, withContext(ctx))
	if err != nil {
		return 0, fmt.Errorf("list users of organization id=%d: %w", orgID, err)
	}
	have := map[string]*models.OrgUserDTO{}
	for _, u := range got.Payload {
		have[strings.ToLower(u.Email)] = u
	}

	want := map[string]bool{}
	for _, m := range members {
		email := strings.ToLower(m.Email)
		want[email] = true
		if err := s.ensureMember(ctx, orgID, m, have[email]); err != nil {
			return 0, err
		}
	}
	for email, u := range have {
		if want[email] || u.Login == s.adminUser {
			continue
		}
		_, err := s.api.Orgs.RemoveOrgUser(u.UserID, orgID, withContext(ctx))
		if err != nil && !isCode(err, 404) {
			return 0, fmt.Errorf("remove user id=%d from organization id=%d: %w",
				u.UserID, orgID, err)
		}
	}
	return len(members), nil
}

// ensureMember gives a member the Viewer role in the organization, creating
// the Grafana user when there is none with that email.
func (s *Syncer) ensureMember(ctx context.Context, orgID int64, m *tenancy.Member,
	u *models.OrgUserDTO) error {
	if u != nil {
		if u.Role == viewerRole {
			return nil
		}
		params := orgs.NewUpdateOrgUserParamsWithContext(ctx).WithOrgID(orgID).
			WithUserID(u.UserID).WithBody(&models.UpdateOrgUserCommand{Role: viewerRole})
		if _, err := s.api.Orgs.UpdateOrgUser(params); err != nil {
			return fmt.Errorf("set role of user id=%d in organization id=%d: %w",
				u.UserID, orgID, err)
		}
		return nil
	}

	_, err := s.api.Users.GetUserByLoginOrEmail(m.Email, withContext(ctx))
	if isCode(err, 404) {
		return s.createUser(ctx, orgID, m)
	}
	if err != nil {
		return fmt.Errorf("look up grafana user email=%q: %w", m.Email, err)
	}
	cmd := &models.AddOrgUserCommand{LoginOrEmail: m.Email, Role: viewerRole}
	_, err = s.api.Orgs.AddOrgUser(orgID, cmd, withContext(ctx))
	if err != nil && !isCode(err, 409) {
		return fmt.Errorf("add user email=%q to organization id=%d: %w", m.Email, orgID, err)
	}
	return nil
}

// createUser makes a Grafana user for a member, straight into the project's
// organization so that it never lands in the main one. Members sign in with
// Canopy's JWT, never with this random password.
func (s *Syncer) createUser(ctx context.Context, orgID int64, m *tenancy.Member) error {
	password, _, err := NewToken()
	if err != nil {
		return err
	}
	form := &models.AdminCreateUserForm{Email: m.Email, Login: m.Email, Name: m.Name,
		OrgID: orgID, Password: models.Password(password)}
	if _, err := s.api.AdminUsers.AdminCreateUser(form, withContext(ctx)); err != nil {
		return fmt.Errorf("create grafana user email=%q: %w", m.Email, err)
	}
	return nil
}
