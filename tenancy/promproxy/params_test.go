package promproxy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoute(t *testing.T) {
	cases := []struct {
		path, endpoint, label string
	}{
		{"/api/v1/query", "query", ""},
		{"/api/v1/query_range", "query_range", ""},
		{"/api/v1/series", "series", ""},
		{"/api/v1/labels", "labels", ""},
		{"/api/v1/label/pod/values", "label_values", "pod"},
		{"/api/v1/label/__name__/values", "label_values", "__name__"},
		{"/api/v1/projects/p1/prometheus/api/v1/query", "query", ""},
		{"/api/v1/projects/p1/prometheus/api/v1/label/prometheus/values", "label_values",
			"prometheus"},
		{"/api/v1/projects/p1/prometheus/api/v1/label/api/values", "label_values", "api"},
		{"/api/v1/query/", "query", ""},
		{"/api/v1/label/a%2Fb/values", "", ""},
		{"/api/v1/label/a-b/values", "", ""},
		{"/api/v1/label//values", "", ""},
		{"/api/v1/metadata", "", ""},
		{"/api/v1/status/config", "", ""},
		{"/api/v2/query", "", ""},
		{"/query", "", ""},
		{"", "", ""},
	}
	for _, tc := range cases {
		ep, label, ok := route(tc.path)
		require.Equal(t, tc.endpoint != "", ok, "path %q", tc.path)
		require.Equal(t, tc.endpoint, ep.name, "path %q", tc.path)
		require.Equal(t, tc.label, label, "path %q", tc.path)
	}
}
