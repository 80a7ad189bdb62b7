package dashboards

import (
	"errors"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Kind names one of Canopy's dashboards. It is part of the dashboard's uid,
// so it never changes.
type Kind string

// The dashboards Canopy builds.
const (
	// KindCluster is the admin overview of every namespace and the collector.
	KindCluster Kind = "cluster"
	// KindNodes is the admin view of the collector's targets, per node.
	KindNodes Kind = "nodes"
	// KindNamespace is a project's namespace overview.
	KindNamespace Kind = "ns"
	// KindPods breaks a project's usage down per pod.
	KindPods Kind = "pods"
	// KindApps breaks a project's usage down per app.
	KindApps Kind = "apps"
)

// AdminKinds are the dashboards of the main organization.
var AdminKinds = []Kind{KindCluster, KindNodes}

// ProjectKinds are the dashboards of every project's organization.
var ProjectKinds = []Kind{KindNamespace, KindPods, KindApps}

// Admin reports whether k belongs to the main organization.
func (k Kind) Admin() bool { return k == KindCluster || k == KindNodes }

// Tags Canopy puts on its dashboards. The sync finds its own dashboards by
// TagManaged; dashboard links list the others of the same scope.
const (
	TagManaged = "canopy"
	tagAdmin   = "canopy-admin"
	tagProject = "canopy-project"
)

// ErrInvalidProject means a project name cannot name dashboards.
var ErrInvalidProject = errors.New("invalid project name")

// Dashboard is one dashboard as the SDK models it, with its identity.
type Dashboard struct {
	Kind  Kind
	UID   string
	Title string
	Model dashboard.Dashboard
}

// Admin builds the dashboards of the main organization.
func Admin() ([]Dashboard, error) {
	return buildAll([]spec{clusterSpec(), nodesSpec()})
}

// Project builds the dashboards of one project's organization.
func Project(name string) ([]Dashboard, error) {
	if !validProjectName(name) {
		return nil, fmt.Errorf("build dashboards of project=%q: %w", name, ErrInvalidProject)
	}
	return buildAll([]spec{namespaceSpec(name), podsSpec(name), appsSpec(name)})
}

// validProjectName accepts a DNS-1123 label, as project names are.
func validProjectName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// spec describes one dashboard before it is built.
type spec struct {
	kind        Kind
	project     string
	title       string
	description string
	variables   []cogVariable
	sections    []section
}

// section is a row of the dashboard and its panels.
type section struct {
	title  string
	panels []panel
}

// buildAll builds every spec, stopping at the first error.
func buildAll(specs []spec) ([]Dashboard, error) {
	out := make([]Dashboard, 0, len(specs))
	for _, s := range specs {
		d, err := s.build()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// build lays s out with the SDK: common settings, variables, then each
// section as a row followed by its panels, with panel ids in order.
func (s spec) build() (Dashboard, error) {
	uid := UID(s.kind, s.project)
	tag := tagProject
	if s.kind.Admin() {
		tag = tagAdmin
	}
	b := dashboard.NewDashboardBuilder(s.title).
		Uid(uid).
		Description(s.description).
		Tags([]string{TagManaged, tag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(datasourceVariable()).
		Link(dashboard.NewDashboardLinkBuilder("Canopy dashboards").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{tag}).
			AsDropdown(true).
			IncludeVars(false).
			KeepTime(true))
	for _, v := range s.variables {
		b = b.WithVariable(v)
	}

	id := uint32(1)
	for _, sec := range s.sections {
		b = b.WithRow(dashboard.NewRowBuilder(sec.title).Id(id))
		id++
		for _, p := range sec.panels {
			b = b.WithPanel(p.builder(id))
			id++
		}
	}

	model, err := b.Build()
	if err != nil {
		return Dashboard{}, fmt.Errorf("build dashboard uid=%q: %w", uid, err)
	}
	return Dashboard{Kind: s.kind, UID: uid, Title: s.title, Model: model}, nil
}

// datasourceVariable lets the viewer pick the Prometheus data source; it
// starts on the organization's default one.
func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(datasourceVar).
		Label("Data source").
		Type("prometheus")
}

// labelVariable is a multi-value variable over the values of label in the
// series of selector, with "All" matching every value, empty included.
func labelVariable(name, label, selector string) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, %s)", selector, label)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasourceRef()).
		Query(dashboard.StringOrMap{String: &q}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*")
}

// cogVariable is the builder type of any template variable.
type cogVariable = cog.Builder[dashboard.VariableModel]
