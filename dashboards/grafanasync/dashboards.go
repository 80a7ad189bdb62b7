package grafanasync

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	goapi "github.com/grafana/grafana-openapi-client-go/client"
	"github.com/grafana/grafana-openapi-client-go/client/search"
	"github.com/grafana/grafana-openapi-client-go/models"

	"canopy.dev/canopy/dashboards"
)

// serverOwned are dashboard fields Grafana sets itself; comparisons skip them.
var serverOwned = []string{"id", "version"}

// syncDashboards saves each desired dashboard whose stored copy is missing or
// differs, and deletes dashboards tagged as Canopy's that are no longer
// desired.
func (s *Syncer) syncDashboards(ctx context.Context, c *goapi.GrafanaHTTPAPI,
	desired []dashboards.Dashboard) error {
	want := map[string]bool{}
	for _, d := range desired {
		want[d.UID] = true
		if err := s.syncDashboard(ctx, c, d); err != nil {
			return err
		}
	}

	tag, typ := []string{dashboards.TagManaged}, "dash-db"
	hits, err := c.Search.Search(search.NewSearchParams().WithContext(ctx).
		WithTag(tag).WithType(&typ))
	if err != nil {
		return fmt.Errorf("search dashboards tag=%q: %w", dashboards.TagManaged, err)
	}
	for _, h := range hits.Payload {
		if want[h.UID] {
			continue
		}
		if _, err := c.Dashboards.DeleteDashboardByUID(h.UID, withContext(ctx)); err != nil &&
			!isCode(err, 404) {
			return fmt.Errorf("delete dashboard uid=%q: %w", h.UID, err)
		}
	}
	return nil
}

// syncDashboard saves d unless Grafana holds the same. An update names the
// stored version, so that a save made meanwhile is not overwritten blindly.
func (s *Syncer) syncDashboard(ctx context.Context, c *goapi.GrafanaHTTPAPI,
	d dashboards.Dashboard) error {
	model, err := toMap(d.Model)
	if err != nil {
		return fmt.Errorf("encode dashboard uid=%q: %w", d.UID, err)
	}

	got, err := c.Dashboards.GetDashboardByUID(d.UID, withContext(ctx))
	switch {
	case isCode(err, 404):
		// Created below, with no version.
	case err != nil:
		return fmt.Errorf("get dashboard uid=%q: %w", d.UID, err)
	default:
		stored, _ := got.Payload.Dashboard.(map[string]any)
		if sameDashboard(stored, model) {
			return nil
		}
		if got.Payload.Meta != nil {
			model["version"] = got.Payload.Meta.Version
		}
	}

	cmd := &models.SaveDashboardCommand{Dashboard: model,
		Message: "Synced by Canopy", Overwrite: false}
	_, err = c.Dashboards.PostDashboard(cmd, withContext(ctx))
	if isCode(err, 412) && isNameExists(err) {
		return fmt.Errorf("save dashboard uid=%q title=%q: %w", d.UID, d.Title,
			ErrDashboardTitleTaken)
	}
	if err != nil {
		return fmt.Errorf("save dashboard uid=%q: %w", d.UID, err)
	}
	return nil
}

// isNameExists reports whether a 412 is Grafana's name-exists.
func isNameExists(err error) bool {
	var pf interface {
		GetPayload() *models.ErrorResponseBody
	}
	if !asError(err, &pf) || pf.GetPayload() == nil {
		return false
	}
	return pf.GetPayload().Status == "name-exists"
}

// sameDashboard compares two dashboard models, ignoring server-owned fields.
func sameDashboard(stored, desired map[string]any) bool {
	if stored == nil {
		return false
	}
	a, b := clone(stored), clone(desired)
	for _, k := range serverOwned {
		delete(a, k)
		delete(b, k)
	}
	return reflect.DeepEqual(a, b)
}

// clone copies the top level of m.
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// toMap turns v into its generic JSON form, numbers as float64, as the
// client decodes Grafana's answers.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
