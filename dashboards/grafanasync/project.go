package grafanasync

import (
	"context"
	"errors"
	"fmt"

	"github.com/grafana/grafana-openapi-client-go/client/orgs"
	"github.com/grafana/grafana-openapi-client-go/models"

	"canopy.dev/canopy/dashboards"
	"canopy.dev/canopy/tenancy"
)

// syncProject makes the project's organization match the store, or deletes
// it when the project is being deleted, and reports in GrafanaReady.
func (s *Syncer) syncProject(ctx context.Context, p *tenancy.Project) error {
	if p.Status == tenancy.StatusDeleting {
		return s.deleteProjectOrg(ctx, p)
	}

	summary, err := s.applyProject(ctx, p)
	if err != nil {
		err = fmt.Errorf("sync grafana of project_id=%q: %w", p.ID, err)
		cond := tenancy.Condition{Type: ConditionReady, Status: "False",
			Reason: reason(err), Message: err.Error()}
		if cerr := s.setCondition(ctx, p, cond); cerr != nil {
			return errors.Join(err, cerr)
		}
		if errors.Is(err, ErrOrganizationTaken) {
			return nil // reported; retrying sooner changes nothing
		}
		return err
	}
	return s.setCondition(ctx, p, tenancy.Condition{Type: ConditionReady, Status: "True",
		Reason: ReasonSynced, Message: summary})
}

// applyProject writes what differs in the project's organization and says
// what the organization now holds.
func (s *Syncer) applyProject(ctx context.Context, p *tenancy.Project) (string, error) {
	orgID, err := s.ensureOrg(ctx, p)
	if err != nil {
		return "", err
	}
	client := s.inOrg(orgID)
	if err := s.ensureDataSource(ctx, client, p); err != nil {
		return "", err
	}
	desired, err := dashboards.Project(p.Name)
	if err != nil {
		return "", fmt.Errorf("build dashboards: %w", err)
	}
	if err := s.syncDashboards(ctx, client, desired); err != nil {
		return "", err
	}
	members, err := s.syncMembers(ctx, orgID, p)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Grafana organization %d holds the data source, %d dashboards "+
		"and %d members", orgID, len(desired), members), nil
}

// ensureOrg returns the id of the project's organization, creating it when
// missing. An organization of that name the sync did not create is never
// adopted: ErrOrganizationTaken.
func (s *Syncer) ensureOrg(ctx context.Context, p *tenancy.Project) (int64, error) {
	if id, ok := recordedOrg(p); ok {
		got, err := s.api.Orgs.GetOrgByID(id, withContext(ctx))
		switch {
		case err == nil && got.Payload.Name == p.Name:
			s.orgs[id] = p.ID
			return id, nil
		case err == nil:
			return id, s.renameOrg(ctx, id, p.Name)
		case !isCode(err, 404):
			return 0, fmt.Errorf("get organization id=%d: %w", id, err)
		}
		// Deleted by hand: make it again.
	}

	_, err := s.api.Orgs.GetOrgByName(p.Name, withContext(ctx))
	switch {
	case err == nil:
		return 0, fmt.Errorf("organization name=%q: %w", p.Name, ErrOrganizationTaken)
	case !isCode(err, 404):
		return 0, fmt.Errorf("get organization name=%q: %w", p.Name, err)
	}

	created, err := s.api.Orgs.CreateOrg(&models.CreateOrgCommand{Name: p.Name}, withContext(ctx))
	if isCode(err, 409) {
		return 0, fmt.Errorf("create organization name=%q: %w", p.Name, ErrOrganizationTaken)
	}
	if err != nil {
		return 0, fmt.Errorf("create organization name=%q: %w", p.Name, err)
	}
	id := *created.Payload.OrgID
	s.orgs[id] = p.ID
	s.log.Info("created grafana organization", "project_id", p.ID, "org_id", id)

	// TODO(grafana): a crash between CreateOrg and this write leaves an
	// organization the next pass reports as taken; a store field written
	// before the create would close that window.
	rec := tenancy.Condition{Type: ConditionOrganization, Status: "True", Reason: "Created",
		Message: fmt.Sprintf(orgRecordFormat, id)}
	if err := s.store.SetProjectCondition(ctx, p.ID, rec); err != nil {
		return 0, fmt.Errorf("record organization id=%d: %w", id, err)
	}
	p.Conditions = upsert(p.Conditions, rec)
	return id, nil
}

// orgRecordFormat is the message of the GrafanaOrganization condition.
const orgRecordFormat = "Grafana organization %d was created for this project"

// recordedOrg reads the id of the organization the sync created for p.
func recordedOrg(p *tenancy.Project) (int64, bool) {
	for _, c := range p.Conditions {
		if c.Type != ConditionOrganization {
			continue
		}
		var id int64
		if _, err := fmt.Sscanf(c.Message, orgRecordFormat, &id); err == nil && id > 0 {
			return id, true
		}
	}
	return 0, false
}

// renameOrg gives back its project's name to an organization renamed by hand.
func (s *Syncer) renameOrg(ctx context.Context, id int64, name string) error {
	_, err := s.api.Orgs.UpdateOrg(id, &models.UpdateOrgForm{Name: name}, withContext(ctx))
	if err != nil {
		return fmt.Errorf("rename organization id=%d: %w", id, err)
	}
	return nil
}

// deleteProjectOrg deletes the organization of a project being deleted.
func (s *Syncer) deleteProjectOrg(ctx context.Context, p *tenancy.Project) error {
	id, ok := recordedOrg(p)
	if ok {
		if err := s.deleteOrg(ctx, id); err != nil {
			err = fmt.Errorf("delete grafana of project_id=%q: %w", p.ID, err)
			cond := tenancy.Condition{Type: ConditionReady, Status: "False",
				Reason: reason(err), Message: err.Error()}
			return errors.Join(err, s.setCondition(ctx, p, cond))
		}
	}
	return s.setCondition(ctx, p, tenancy.Condition{Type: ConditionReady, Status: "False",
		Reason: ReasonOrganizationDeleted, Message: "The project's Grafana organization is deleted"})
}

// deleteOrg deletes an organization; one already gone is fine.
func (s *Syncer) deleteOrg(ctx context.Context, id int64) error {
	_, err := s.api.Orgs.DeleteOrgByID(id, withContext(ctx))
	if err != nil && !isCode(err, 404) {
		return fmt.Errorf("delete organization id=%d: %w", id, err)
	}
	delete(s.orgs, id)
	s.log.Info("deleted grafana organization", "org_id", id)
	return nil
}

// sweep deletes the organizations of projects gone from the store: those the
// sync remembers creating, and those whose Canopy data source names a project
// the store no longer has (after a restart, say).
func (s *Syncer) sweep(ctx context.Context, projects []*tenancy.Project) error {
	live := map[string]bool{}
	claimed := map[int64]bool{mainOrgID: true}
	for _, p := range projects {
		live[p.ID] = true
		if id, ok := recordedOrg(p); ok {
			claimed[id] = true
		}
	}

	list, err := s.api.Orgs.SearchOrgs(orgs.NewSearchOrgsParams().WithContext(ctx))
	if err != nil {
		return fmt.Errorf("list organizations: %w", err)
	}
	var errs []error
	for _, o := range list.Payload {
		if claimed[o.ID] {
			continue
		}
		owner, known := s.orgs[o.ID]
		if !known {
			owner = s.markedProject(ctx, o.ID)
		}
		if owner == "" || live[owner] || !s.projectGone(ctx, owner) {
			continue
		}
		if err := s.deleteOrg(ctx, o.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// markedProject returns the project named by the Canopy data source of an
// organization, or "" when it has none (or the sync may not look).
func (s *Syncer) markedProject(ctx context.Context, orgID int64) string {
	ds, err := s.inOrg(orgID).Datasources.GetDataSourceByUID(dataSourceUID, withContext(ctx))
	if err != nil {
		return ""
	}
	m, _ := ds.Payload.JSONData.(map[string]any)
	owner, _ := m[jsonDataProjectID].(string)
	return owner
}

// projectGone reports whether the store surely has no such project.
func (s *Syncer) projectGone(ctx context.Context, id string) bool {
	_, err := s.store.ProjectByID(ctx, id)
	return errors.Is(err, tenancy.ErrNotFound)
}

// setCondition writes c unless p already carries the same condition.
func (s *Syncer) setCondition(ctx context.Context, p *tenancy.Project, c tenancy.Condition) error {
	for _, have := range p.Conditions {
		if have.Type == c.Type && have.Status == c.Status && have.Reason == c.Reason &&
			have.Message == c.Message {
			return nil
		}
	}
	if err := s.store.SetProjectCondition(ctx, p.ID, c); err != nil {
		if errors.Is(err, tenancy.ErrNotFound) {
			return nil // deleted meanwhile
		}
		return fmt.Errorf("set condition type=%q of project_id=%q: %w", c.Type, p.ID, err)
	}
	if c.Type == ConditionReady {
		s.log.Info("grafana condition changed", "project_id", p.ID, "status", c.Status,
			"reason", c.Reason)
	}
	p.Conditions = upsert(p.Conditions, c)
	return nil
}

// upsert replaces the condition of c's type in list, or appends c.
func upsert(list []tenancy.Condition, c tenancy.Condition) []tenancy.Condition {
	for i := range list {
		if list[i].Type == c.Type {
			list[i] = c
			return list
		}
	}
	return append(list, c)
}
