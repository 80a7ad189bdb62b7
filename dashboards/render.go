package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ExampleProject names the project whose dashboards RenderAll writes when no
// project is given.
const ExampleProject = "example"

// File is one rendered dashboard: where it goes under the output folder, and
// its Grafana JSON.
type File struct {
	// Path is relative: admin/<uid>.json or projects/<project>/<uid>.json,
	// one folder per Grafana organization.
	Path string
	UID  string
	JSON []byte
}

// JSON renders d as indented Grafana dashboard JSON, ending in a newline.
func (d Dashboard) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(d.Model, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode dashboard uid=%q: %w", d.UID, err)
	}
	return append(b, '\n'), nil
}

// Render returns the admin dashboards and those of project, as JSON files.
func Render(project string) ([]File, error) {
	admin, err := Admin()
	if err != nil {
		return nil, err
	}
	proj, err := Project(project)
	if err != nil {
		return nil, err
	}

	files := make([]File, 0, len(admin)+len(proj))
	for _, d := range admin {
		f, err := file(filepath.Join("admin", d.UID+".json"), d)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	for _, d := range proj {
		f, err := file(filepath.Join("projects", project, d.UID+".json"), d)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// file renders d into a File at path.
func file(path string, d Dashboard) (File, error) {
	b, err := d.JSON()
	if err != nil {
		return File{}, err
	}
	return File{Path: path, UID: d.UID, JSON: b}, nil
}

// RenderAll writes every dashboard Render returns under outDir, creating the
// folders it needs. An empty project renders ExampleProject. Each file is
// written whole or not at all.
func RenderAll(outDir, project string) error {
	if project == "" {
		project = ExampleProject
	}
	files, err := Render(project)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(outDir, f.Path), f.JSON); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes b to path through a temporary file renamed into place.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create folder of path=%q: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dashboard-*")
	if err != nil {
		return fmt.Errorf("create file beside path=%q: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed

	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write path=%q: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write path=%q: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("set mode of path=%q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into path=%q: %w", path, err)
	}
	return nil
}

// Query is one PromQL expression of a dashboard, before Grafana substitutes
// its template variables.
type Query struct {
	Expr string
	// Variable names the template variable whose label_values selector Expr
	// is; it is empty for a panel's target.
	Variable string
}

// Queries lists every PromQL expression of d: each panel target's expr, and
// the series selector of each label_values variable.
func (d Dashboard) Queries() ([]Query, error) {
	b, err := json.Marshal(d.Model)
	if err != nil {
		return nil, fmt.Errorf("encode dashboard uid=%q: %w", d.UID, err)
	}
	var doc struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode dashboard uid=%q: %w", d.UID, err)
	}

	var out []Query
	for _, p := range doc.Panels {
		for _, t := range p.Targets {
			out = append(out, Query{Expr: t.Expr})
		}
	}
	for _, v := range doc.Templating.List {
		q, ok := v.Query.(string)
		if v.Type != "query" || !ok {
			continue
		}
		sel, ok := labelValuesSelector(q)
		if !ok {
			return nil, fmt.Errorf("read variable query=%q of uid=%q: %w", q, d.UID, ErrNotLabelValues)
		}
		out = append(out, Query{Expr: sel, Variable: v.Name})
	}
	return out, nil
}

// ErrNotLabelValues means a query variable is not label_values(selector, label).
var ErrNotLabelValues = errors.New("variable query is not label_values(selector, label)")

// labelValuesSelector returns the selector of label_values(selector, label).
func labelValuesSelector(q string) (string, bool) {
	inner, ok := strings.CutPrefix(q, "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", false
	}
	sel, label := strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:])
	if sel == "" || label == "" {
		return "", false
	}
	return sel, true
}
