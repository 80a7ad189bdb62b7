package grafanasync

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	goapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/models"

	"canopy.dev/canopy/api/auth"
	"canopy.dev/canopy/tenancy"
)

// The project data source every project organization holds.
const (
	dataSourceUID  = "canopy-prometheus"
	dataSourceName = "Canopy"
	// secureHeaderKey holds "Bearer <project token>"; Grafana sends it in the
	// header named by jsonData.httpHeaderName1.
	secureHeaderKey = "httpHeaderValue1"
	// jsonDataProjectID marks the data source, and so its organization, as
	// belonging to a Canopy project.
	jsonDataProjectID = "canopyProjectId"
	// tokenName names the project tokens the sync mints for Grafana.
	tokenName = "grafana"
	// TokenPrefix starts every project token secret.
	TokenPrefix = auth.ProjectTokenPrefix
)

// desiredDataSource is the project's data source as the sync wants it,
// without its secret.
func (s *Syncer) desiredDataSource(p *tenancy.Project) models.UpdateDataSourceCommand {
	return models.UpdateDataSourceCommand{
		UID:       dataSourceUID,
		Name:      dataSourceName,
		Type:      "prometheus",
		Access:    "proxy",
		URL:       s.externalURL + "/api/v1/projects/" + p.ID + "/prometheus",
		IsDefault: true,
		JSONData: map[string]any{
			"httpHeaderName1": "Authorization",
			"httpMethod":      "GET",
			jsonDataProjectID: p.ID,
		},
	}
}

// ensureDataSource creates or repairs the project's data source. Grafana
// never returns secrets, only secureJsonFields; when the token is not set
// there, the sync mints a new project token and sends it.
func (s *Syncer) ensureDataSource(ctx context.Context, c *goapi.GrafanaHTTPAPI,
	p *tenancy.Project) error {
	want := s.desiredDataSource(p)
	got, err := c.Datasources.GetDataSourceByUID(dataSourceUID, withContext(ctx))
	if isCode(err, 404) {
		return s.withNewToken(ctx, p, func(secret string) error {
			cmd := models.AddDataSourceCommand{UID: want.UID, Name: want.Name, Type: want.Type,
				Access: want.Access, URL: want.URL, IsDefault: want.IsDefault,
				JSONData: want.JSONData, SecureJSONData: bearer(secret)}
			if _, err := c.Datasources.AddDataSource(&cmd, withContext(ctx)); err != nil {
				return fmt.Errorf("add data source uid=%q: %w", dataSourceUID, err)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("get data source uid=%q: %w", dataSourceUID, err)
	}

	have := got.Payload
	if !have.SecureJSONFields[secureHeaderKey] {
		return s.withNewToken(ctx, p, func(secret string) error {
			cmd := want
			cmd.SecureJSONData = bearer(secret)
			return s.updateDataSource(ctx, c, &cmd)
		})
	}
	if !sameDataSource(have, want) {
		return s.updateDataSource(ctx, c, &want)
	}
	return nil
}

// updateDataSource writes cmd over the project's data source.
func (s *Syncer) updateDataSource(ctx context.Context, c *goapi.GrafanaHTTPAPI,
	cmd *models.UpdateDataSourceCommand) error {
	_, err := c.Datasources.UpdateDataSourceByUID(dataSourceUID, cmd, withContext(ctx))
	if err != nil {
		return fmt.Errorf("update data source uid=%q: %w", dataSourceUID, err)
	}
	return nil
}

// sameDataSource compares the fields the sync sets; jsonData keys Grafana
// adds are left alone.
func sameDataSource(have *models.DataSource, want models.UpdateDataSourceCommand) bool {
	if have.Name != want.Name || have.Type != want.Type || have.URL != want.URL ||
		string(have.Access) != string(want.Access) || have.IsDefault != want.IsDefault {
		return false
	}
	got, _ := have.JSONData.(map[string]any)
	for k, v := range want.JSONData.(map[string]any) {
		if !reflect.DeepEqual(got[k], v) {
			return false
		}
	}
	return true
}

// bearer is the secureJsonData carrying a project token.
func bearer(secret string) map[string]string {
	return map[string]string{secureHeaderKey: "Bearer " + secret}
}

// withNewToken mints a project token, hands its secret to write, and then
// keeps only that token among the sync's: older ones are deleted once
// Grafana holds the new one, and the new one is deleted if write fails.
func (s *Syncer) withNewToken(ctx context.Context, p *tenancy.Project,
	write func(secret string) error) error {
	secret, hash, err := NewToken()
	if err != nil {
		return err
	}
	tok := &tenancy.ProjectToken{ProjectID: p.ID, Name: tokenName, Hash: hash}
	if err := s.store.CreateProjectToken(ctx, tok); err != nil {
		return fmt.Errorf("create project token of project_id=%q: %w", p.ID, err)
	}

	if err := write(secret); err != nil {
		if derr := s.store.DeleteProjectToken(ctx, p.ID, tok.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete unused project token: %w", derr))
		}
		return err
	}

	list, err := s.store.ListProjectTokens(ctx, p.ID)
	if err != nil {
		return fmt.Errorf("list project tokens of project_id=%q: %w", p.ID, err)
	}
	for _, old := range list {
		if old.Name != tokenName || old.ID == tok.ID {
			continue
		}
		if err := s.store.DeleteProjectToken(ctx, p.ID, old.ID); err != nil &&
			!errors.Is(err, tenancy.ErrNotFound) {
			return fmt.Errorf("delete old project token of project_id=%q: %w", p.ID, err)
		}
	}
	return nil
}

// NewToken returns a new project token secret and the hash the store keeps,
// minted exactly as the API mints project tokens.
func NewToken() (secret string, hash []byte, err error) {
	return auth.NewOpaqueToken(TokenPrefix)
}
