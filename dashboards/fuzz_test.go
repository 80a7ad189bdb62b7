package dashboards

import (
	"strings"
	"testing"
)

// FuzzLabelValuesSelector checks that reading a variable query never panics
// and that what it returns is the inside of the call, before the last comma.
func FuzzLabelValuesSelector(f *testing.F) {
	for _, seed := range []string{
		"label_values(canopy_app_cpu_usage_seconds_total, app)",
		`label_values(canopy_pod_cpu_usage_seconds_total{app=~"$app"}, pod)`,
		"label_values(app)",
		"label_values(",
		"up",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		sel, ok := labelValuesSelector(q)
		if !ok {
			return
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
		if sel == "" || !strings.HasPrefix(strings.TrimSpace(inner), sel) {
			t.Fatalf("labelValuesSelector(%q) = %q, not the call's first argument", q, sel)
		}
		if strings.TrimSpace(sel) != sel {
			t.Fatalf("labelValuesSelector(%q) = %q keeps spaces", q, sel)
		}
	})
}

func BenchmarkRender(b *testing.B) {
	for b.Loop() {
		if _, err := Render("shop"); err != nil {
			b.Fatal(err)
		}
	}
}
