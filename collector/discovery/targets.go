package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"canopy.dev/canopy/collector/source"
)

// ErrInvalidTargets means the static targets file breaks a rule. The wrapping
// error lists every problem found, not only the first.
var ErrInvalidTargets = errors.New("invalid static targets")

// targetsFile is the YAML shape of CANOPY_SCRAPE_TARGETS.
type targetsFile struct {
	Targets []fileTarget `json:"targets"`
}

// fileTarget is one entry of the static targets file.
type fileTarget struct {
	Node               string `json:"node"`
	URL                string `json:"url"`
	Kind               string `json:"kind"`
	BearerTokenFile    string `json:"bearerTokenFile,omitempty"`
	CAFile             string `json:"caFile,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
}

// LoadTargets reads and validates the static targets file at path.
func LoadTargets(path string) ([]source.Target, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read static targets: %w", err)
	}
	targets, err := ParseTargets(data)
	if err != nil {
		return nil, fmt.Errorf("load static targets path=%q: %w", path, err)
	}
	return targets, nil
}

// ParseTargets decodes a static targets file (YAML, see DESIGN.md) and checks
// every entry. Unknown fields are errors, so a misspelt key is not silently
// ignored. All problems are reported at once, joined under ErrInvalidTargets;
// on any problem no target is returned.
//
// Besides the kinds of DESIGN.md, kind kubelet-pods (the kubelet's /pods) is
// accepted, so pod facts can come from kubelets when there is no API server.
func ParseTargets(data []byte) ([]source.Target, error) {
	var file targetsFile
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		return nil, fmt.Errorf("decode static targets: %w: %w", ErrInvalidTargets, err)
	}

	var problems []error
	seen := make(map[targetKey]int, len(file.Targets))
	targets := make([]source.Target, 0, len(file.Targets))
	for i, ft := range file.Targets {
		t, errs := ft.validate(i)
		problems = append(problems, errs...)

		// Two entries for one node endpoint would count its usage twice.
		key := keyOf(t)
		if first, dup := seen[key]; dup && t.Node != "" && t.Kind.Valid() {
			problems = append(problems, fmt.Errorf(
				"targets[%d]: node %q kind %q is already listed at targets[%d]",
				i, t.Node, t.Kind, first))
			continue
		}
		seen[key] = i
		targets = append(targets, t)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTargets, errors.Join(problems...))
	}
	return targets, nil
}

// validate converts one file entry, returning every problem it has.
func (ft fileTarget) validate(i int) (source.Target, []error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("targets[%d]: "+format, append([]any{i}, args...)...))
	}

	t := source.Target{
		Node:               strings.TrimSpace(ft.Node),
		URL:                strings.TrimSpace(ft.URL),
		Kind:               source.Kind(ft.Kind),
		BearerTokenFile:    ft.BearerTokenFile,
		CAFile:             ft.CAFile,
		InsecureSkipVerify: ft.InsecureSkipVerify,
	}
	if t.Node == "" {
		bad("node is required")
	}
	if !t.Kind.Valid() {
		bad("kind %q is not one of %s", ft.Kind, strings.Join(kindNames(), ", "))
	}
	if err := checkURL(t.URL); err != nil {
		bad("url %q: %w", t.URL, err)
	}
	if t.CAFile != "" && t.InsecureSkipVerify {
		bad("caFile and insecureSkipVerify contradict each other: set one")
	}
	if (t.CAFile != "" || t.InsecureSkipVerify) && strings.HasPrefix(t.URL, "http://") {
		bad("caFile and insecureSkipVerify need an https url")
	}
	if t.BearerTokenFile != "" && strings.HasPrefix(t.URL, "http://") {
		bad("bearerTokenFile needs an https url: the token would cross the network in clear")
	}
	return t, errs
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("host is missing")
	}
	return nil
}

// kindNames lists the kinds a static target may have, for error messages.
func kindNames() []string {
	kinds := []source.Kind{
		source.KubeletCadvisor, source.KubeletResource, source.KubeletSummary,
		source.Cadvisor, source.KubeletPods,
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return names
}

// targetKey identifies one endpoint of one node: at most one target each.
type targetKey struct {
	node string
	kind source.Kind
}

func keyOf(t source.Target) targetKey { return targetKey{node: t.Node, kind: t.Kind} }

// Merge returns the static targets plus every discovered target whose node
// and kind no static target already has: a static entry overrides discovery
// for that endpoint of that node (another URL, token or CA), and the
// discovered node's other endpoints stay. The result is sorted by node, then
// kind, so cycles see targets in a stable order.
func Merge(static, discovered []source.Target) []source.Target {
	out := make([]source.Target, 0, len(static)+len(discovered))
	out = append(out, static...)
	taken := make(map[targetKey]bool, len(static))
	for _, t := range static {
		taken[keyOf(t)] = true
	}
	for _, t := range discovered {
		if !taken[keyOf(t)] {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b source.Target) int {
		if c := strings.Compare(a.Node, b.Node); c != 0 {
			return c
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
	return out
}
