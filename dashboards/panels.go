package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
)

// Units the panels use, beside those of the SDK's units package. Grafana has
// no unit for CPU cores; "suffix:" is its custom-unit syntax.
const (
	unitCores   = "suffix:cores"
	unitSeconds = "s"
)

// datasourceVar is the name of the template variable that picks the
// Prometheus data source. In a project organization the only choice is the
// project's tenant data source; in the main organization it is the admin's.
const datasourceVar = "datasource"

// datasourceRef points panels at the data source chosen by datasourceVar.
func datasourceRef() common.DataSourceRef {
	typ, uid := "prometheus", "${"+datasourceVar+"}"
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

// query is one PromQL target of a panel, with the legend of its series.
type query struct {
	expr   string
	legend string
}

// steps are threshold steps: a base colour, then a colour from each value up.
type steps struct {
	base  string
	marks []mark
}

// mark starts a threshold colour at a value.
type mark struct {
	from  float64
	color string
}

// Threshold sets used across the dashboards.
var (
	// neutral has no alarm level: the panel compares its series with
	// requests and limits drawn beside them instead.
	neutral = steps{base: "green"}
	// anyBad turns red from the first event (OOM kills, failed pods).
	anyBad = steps{base: "green", marks: []mark{{1, "red"}}}
	// fewBad warns from the first event and alarms from five (restarts).
	fewBad = steps{base: "green", marks: []mark{{1, "orange"}, {5, "red"}}}
	// ofLimit warns at 80% and alarms at 90% of a limit.
	ofLimit = steps{base: "green", marks: []mark{{0.8, "orange"}, {0.9, "red"}}}
	// upDown is red below one target up.
	upDown = steps{base: "red", marks: []mark{{1, "green"}}}
	// slowScrape warns at 5 s and alarms at 10 s, against the 15 s cycle.
	slowScrape = steps{base: "green", marks: []mark{{5, "orange"}, {10, "red"}}}
)

// build returns the SDK's thresholds for s.
func (s steps) build() *dashboard.ThresholdsConfigBuilder {
	out := []dashboard.Threshold{{Value: nil, Color: s.base}}
	for _, m := range s.marks {
		v := m.from
		out = append(out, dashboard.Threshold{Value: &v, Color: m.color})
	}
	return dashboard.NewThresholdsConfigBuilder().
		Mode(dashboard.ThresholdsModeAbsolute).
		Steps(out)
}

// targets turns queries into Prometheus targets with refIds A, B, ...
func targets(qs []query, instant bool) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, q := range qs {
		b := prometheus.NewDataqueryBuilder().
			Datasource(datasourceRef()).
			RefId(string(rune('A' + i))).
			Expr(q.expr).
			LegendFormat(q.legend)
		if instant {
			b = b.Instant()
		} else {
			b = b.Range()
		}
		out = append(out, b)
	}
	return out
}

// panel is what every Canopy panel states: a title, a description, a unit,
// thresholds and its queries.
type panel struct {
	title       string
	description string
	unit        string
	thresholds  steps
	queries     []query
	width       uint32
	// dashed is a regular expression matching the series drawn as dashed
	// lines without fill: the requests and limits usage is compared with.
	dashed string
	// bars draws counts of events per interval as bars.
	bars bool
	// max caps the axis, for ratios and up/down series.
	max *float64
	// look is how the panel shows its data.
	look look
}

// look is a panel's visualization.
type look int

// Visualizations Canopy uses.
const (
	lookTimeSeries look = iota
	lookStat
	lookUpTimeline
)

// builder returns the SDK builder of p with panel id.
func (p panel) builder(id uint32) cog.Builder[dashboard.Panel] {
	switch p.look {
	case lookStat:
		return p.stat().Id(id)
	case lookUpTimeline:
		return p.upTimeline().Id(id)
	default:
		return p.timeSeries().Id(id)
	}
}

// timeSeries builds a time series panel from p.
func (p panel) timeSeries() *timeseries.PanelBuilder {
	b := timeseries.NewPanelBuilder().
		Title(p.title).
		Description(p.description).
		Unit(p.unit).
		Min(0).
		Datasource(datasourceRef()).
		Targets(targets(p.queries, false)).
		Thresholds(p.thresholds.build()).
		Span(p.span()).
		Height(8).
		FillOpacity(10).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
	if p.max != nil {
		b = b.Max(*p.max)
	}
	if p.bars {
		b = b.DrawStyle(common.GraphDrawStyleBars).FillOpacity(80)
	}
	if p.dashed != "" {
		b = b.OverrideByRegexp(p.dashed, dashedLine())
	}
	return b
}

// dashedLine draws a series as a dashed line with no fill.
func dashedLine() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{
		{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
		{Id: "custom.fillOpacity", Value: 0},
	}
}

// stat builds a single-value panel from p, reading the last value.
func (p panel) stat() *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(p.title).
		Description(p.description).
		Unit(p.unit).
		Datasource(datasourceRef()).
		Targets(targets(p.queries, true)).
		Thresholds(p.thresholds.build()).
		ColorMode(common.BigValueColorModeValue).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Orientation(common.VizOrientationAuto).
		Span(p.span()).
		Height(4)
}

// upTimeline builds a state timeline of 0/1 series shown as down/up.
func (p panel) upTimeline() *statetimeline.PanelBuilder {
	up, down := "up", "down"
	green, red := "green", "red"
	mapping := dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": {Text: &down, Color: &red},
			"1": {Text: &up, Color: &green},
		},
	}}
	return statetimeline.NewPanelBuilder().
		Title(p.title).
		Description(p.description).
		Unit(p.unit).
		Datasource(datasourceRef()).
		Targets(targets(p.queries, false)).
		Thresholds(p.thresholds.build()).
		Mappings([]dashboard.ValueMapping{mapping}).
		Span(p.span()).
		Height(8)
}

// span is the panel's width in grid columns (24 is the whole row).
func (p panel) span() uint32 {
	if p.width == 0 {
		return 12
	}
	return p.width
}

// Units are re-exported here so that the dashboard files read in one vocabulary.
const (
	unitBytes       = units.BytesIEC
	unitBytesPerSec = units.BytesPerSecondSI
	unitCount       = units.Short
	unitRatio       = units.PercentUnit
	unitNone        = units.NoUnit
)
