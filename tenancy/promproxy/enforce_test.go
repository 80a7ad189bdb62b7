package promproxy

import (
	"errors"
	"slices"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

const tenantNS = "canopy-a"

// canonical prints a hand-written expression the way the PromQL printer does,
// so that expectations need not guess its spacing and matcher order.
func canonical(t *testing.T, expr string) string {
	t.Helper()
	ast, err := promql.ParseExpr(expr)
	require.NoError(t, err, "expected expression %q must parse", expr)
	return ast.String()
}

func TestEnforceExprRestricts(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"bare metric", `up`, `up{namespace="canopy-a"}`},
		{"name regex", `{__name__=~".+"}`, `{__name__=~".+",namespace="canopy-a"}`},
		{"name matcher", `{__name__="up"}`, `{__name__="up",namespace="canopy-a"}`},
		{"range", `rate(x[5m])`, `rate(x{namespace="canopy-a"}[5m])`},
		{"aggregation", `sum by (pod) (rate(x{container!=""}[5m]))`,
			`sum by (pod) (rate(x{container!="",namespace="canopy-a"}[5m]))`},
		{"subquery", `max_over_time(rate(x[1m])[10m:30s])`,
			`max_over_time(rate(x{namespace="canopy-a"}[1m])[10m:30s])`},
		{"subquery of subquery", `max_over_time(min_over_time(x[1m:])[5m:1m] offset 1m)`,
			`max_over_time(min_over_time(x{namespace="canopy-a"}[1m:])[5m:1m] offset 1m)`},
		{"offset", `x offset 5m`, `x{namespace="canopy-a"} offset 5m`},
		{"at", `x @ 1700000000`, `x{namespace="canopy-a"} @ 1700000000`},
		{"at end with offset", `rate(x[5m] @ end() offset 1m)`,
			`rate(x{namespace="canopy-a"}[5m] @ end() offset 1m)`},
		{"group_left", `a / on(pod) group_left b`,
			`a{namespace="canopy-a"} / on(pod) group_left b{namespace="canopy-a"}`},
		{"or on()", `a or on() vector(1)`, `a{namespace="canopy-a"} or on() vector(1)`},
		{"set operators", `a and b unless c`,
			`a{namespace="canopy-a"} and b{namespace="canopy-a"} unless c{namespace="canopy-a"}`},
		{"aggregation parameter", `topk(scalar(count(a)), b)`,
			`topk(scalar(count(a{namespace="canopy-a"})), b{namespace="canopy-a"})`},
		{"count_values", `count_values("v", a)`, `count_values("v", a{namespace="canopy-a"})`},
		{"quantile_over_time", `quantile_over_time(0.9, a[5m])`,
			`quantile_over_time(0.9, a{namespace="canopy-a"}[5m])`},
		{"label_replace", `label_replace(a, "namespace", "x", "namespace", ".*")`,
			`label_replace(a{namespace="canopy-a"}, "namespace", "x", "namespace", ".*")`},
		{"absent", `absent(nope)`, `absent(nope{namespace="canopy-a"})`},
		{"absent_over_time", `absent_over_time(nope[5m])`,
			`absent_over_time(nope{namespace="canopy-a"}[5m])`},
		{"histogram_quantile", `histogram_quantile(0.9, sum by (le) (rate(b_bucket[5m])))`,
			`histogram_quantile(0.9, sum by (le) (rate(b_bucket{namespace="canopy-a"}[5m])))`},
		{"unary and parens", `-(a)`, `-(a{namespace="canopy-a"})`},
		{"no selector", `1 + 1`, `1 + 1`},
		{"vector", `vector(1)`, `vector(1)`},
		{"string", `"s"`, `"s"`},
		{"own namespace kept", `a{namespace="canopy-a"}`, `a{namespace="canopy-a"}`},
		{"own namespace twice", `a{namespace="canopy-a",namespace="canopy-a"}`,
			`a{namespace="canopy-a"}`},
		{"literal regex", `a{namespace=~"canopy-a"}`, `a{namespace="canopy-a"}`},
		{"literal regex in group", `a{namespace=~"(canopy-a)"}`, `a{namespace="canopy-a"}`},
		{"escaped literal regex", `a{namespace=~"canopy\\-a"}`, `a{namespace="canopy-a"}`},
		{"quoted label name", `{"namespace"="canopy-a", __name__="a"}`,
			`{__name__="a",namespace="canopy-a"}`},
		{"other label with the value", `a{pod="namespace"}`,
			`a{namespace="canopy-a",pod="namespace"}`},
		{"label names are case-sensitive", `a{Namespace="canopy-b"}`,
			`a{Namespace="canopy-b",namespace="canopy-a"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnforceExpr(tenantNS, tc.in)
			require.NoError(t, err)
			require.Equal(t, canonical(t, tc.want), got)
		})
	}
}

func TestEnforceExprRefuses(t *testing.T) {
	cases := []struct {
		name, in string
		want     error
	}{
		{"other namespace", `a{namespace="canopy-b"}`, ErrForeignNamespace},
		{"alternation", `a{namespace=~"canopy-a|canopy-b"}`, ErrForeignNamespace},
		{"any namespace", `a{namespace=~".*"}`, ErrForeignNamespace},
		{"prefix regex", `a{namespace=~"canopy-.*"}`, ErrForeignNamespace},
		{"regex with suffix", `a{namespace=~"canopy-a.*"}`, ErrForeignNamespace},
		{"alternation with empty", `a{namespace=~"canopy-a|"}`, ErrForeignNamespace},
		{"case-insensitive", `a{namespace=~"(?i)CANOPY-A"}`, ErrForeignNamespace},
		{"case-insensitive own", `a{namespace=~"(?i)canopy-a"}`, ErrForeignNamespace},
		{"not equal", `a{namespace!="canopy-b"}`, ErrForeignNamespace},
		{"not equal own", `a{namespace!="canopy-a"}`, ErrForeignNamespace},
		{"not regex", `a{namespace!~"canopy-b"}`, ErrForeignNamespace},
		{"no namespace label", `a{namespace=""}`, ErrForeignNamespace},
		{"own and wider", `a{namespace="canopy-a",namespace=~".+"}`, ErrForeignNamespace},
		{"two namespaces", `a{namespace="canopy-a",namespace="canopy-b"}`, ErrForeignNamespace},
		{"quoted label name", `{"namespace"="canopy-b", __name__="a"}`, ErrForeignNamespace},
		{"inside rate", `sum(rate(a{namespace="canopy-b"}[5m]))`, ErrForeignNamespace},
		{"right of or", `a or on() b{namespace="x"}`, ErrForeignNamespace},
		{"in subquery", `max_over_time(a{namespace="canopy-c"}[5m:1m])`, ErrForeignNamespace},
		{"in absent", `absent(a{namespace="canopy-b"})`, ErrForeignNamespace},
		{"in label_replace", `label_replace(a{namespace=~".+"}, "n", "$1", "pod", "(.*)")`,
			ErrForeignNamespace},
		{"with offset", `a{namespace="canopy-b"} offset 1m`, ErrForeignNamespace},
		{"with at", `a{namespace="canopy-b"} @ 100`, ErrForeignNamespace},
		{"aggregation parameter", `topk(scalar(a{namespace="b"}), c)`, ErrForeignNamespace},
		{"empty", ``, ErrBadExpression},
		{"unclosed", `sum(`, ErrBadExpression},
		{"open selector", `a{`, ErrBadExpression},
		{"two expressions", `a b`, ErrBadExpression},
		{"experimental function", `info(a)`, ErrBadExpression},
		{"no non-empty matcher", `{pod=""}`, ErrBadExpression},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnforceExpr(tenantNS, tc.in)
			require.ErrorIs(t, err, tc.want)
			require.Empty(t, got)
		})
	}
}

func TestEnforceSelector(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string // matchers of the result, in any order
		err      error
	}{
		{"metric", `up`, []string{`__name__="up"`, `namespace="canopy-a"`}, nil},
		{"name regex", `{__name__=~".+"}`,
			[]string{`__name__=~".+"`, `namespace="canopy-a"`}, nil},
		{"own namespace", `{namespace="canopy-a"}`, []string{`namespace="canopy-a"`}, nil},
		{"other labels", `x{pod=~"web-.*",container!=""}`, []string{`__name__="x"`,
			`pod=~"web-.*"`, `container!=""`, `namespace="canopy-a"`}, nil},
		{"other namespace", `{namespace="canopy-b"}`, nil, ErrForeignNamespace},
		{"any namespace", `{namespace=~".+"}`, nil, ErrForeignNamespace},
		{"not own", `{__name__="up",namespace!="canopy-a"}`, nil, ErrForeignNamespace},
		{"expression", `sum(up)`, nil, ErrBadExpression},
		{"range", `up[5m]`, nil, ErrBadExpression},
		{"empty", ``, nil, ErrBadExpression},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EnforceSelector(tenantNS, tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			ms, err := promql.ParseMetricSelector(got)
			require.NoError(t, err)
			require.ElementsMatch(t, tc.want, matcherStrings(ms))
		})
	}
}

func TestNamespaceSelector(t *testing.T) {
	ms, err := promql.ParseMetricSelector(NamespaceSelector(tenantNS))
	require.NoError(t, err)
	require.Equal(t, []string{`namespace="canopy-a"`}, matcherStrings(ms))
}

func matcherStrings(ms []*labels.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// exprSeeds are expressions of every shape the enforcement walks.
var exprSeeds = []string{
	`up`, `{__name__=~".+"}`, `rate(x[5m])`, `sum by (pod) (rate(x{container!=""}[5m]))`,
	`max_over_time(rate(x[1m])[10m:30s])`, `x offset 5m`, `x @ 1700000000`,
	`rate(x[5m] @ end() offset 1m)`, `a / on(pod) group_left b`, `a or on() vector(1)`,
	`topk(scalar(count(a)), b)`, `label_replace(a, "namespace", "x", "namespace", ".*")`,
	`absent(nope)`, `histogram_quantile(0.9, sum by (le) (rate(b_bucket[5m])))`, `-(a)`,
	`1 + 1`, `a{namespace="canopy-a"}`, `a{namespace=~"canopy-a"}`,
	`a{namespace=~"canopy-a|canopy-b"}`, `a{namespace!="x"}`, `{"namespace"="canopy-b"}`,
	`{"a.b", namespace="canopy-a"}`, `sum(a) without (namespace) > bool 1`,
	`count_values("namespace", a)`, `a[5m:] offset -1m`, `sort_desc(a)`, `a{namespace=""}`,
	`quantile(0.5, a) by (namespace)`, `x{namespace=~"(canopy-a)"} unless ignoring(pod) y`,
}

// FuzzEnforceExpr checks, for any text, that the enforcement either refuses
// it or returns an expression that parses, whose every selector carries
// namespace="canopy-a" and no other namespace matcher, with as many selectors
// as the input had; and that enforcing the result again changes nothing.
func FuzzEnforceExpr(f *testing.F) {
	for _, s := range exprSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := EnforceExpr(tenantNS, in)
		if err != nil {
			checkRefusal(t, in, err)
			return
		}

		inAST, err := promql.ParseExpr(in)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", in, err)
		}
		outAST, err := promql.ParseExpr(out)
		if err != nil {
			t.Fatalf("rewrote %q as %q, which does not parse: %v", in, out, err)
		}
		inSel, outSel := selectors(inAST), selectors(outAST)
		if len(inSel) != len(outSel) {
			t.Fatalf("%q has %d selectors, its rewrite %q has %d",
				in, len(inSel), out, len(outSel))
		}
		for _, ms := range outSel {
			if got := namespaceMatchers(ms); len(got) != 1 || got[0] != `namespace="canopy-a"` {
				t.Fatalf("rewrite %q of %q has a selector with namespace matchers %v",
					out, in, got)
			}
		}
		again, err := EnforceExpr(tenantNS, out)
		if err != nil || again != out {
			t.Fatalf("enforcing %q again gave %q, %v", out, again, err)
		}
	})
}

// FuzzEnforceSelector checks the same for match[] series selectors.
func FuzzEnforceSelector(f *testing.F) {
	for _, s := range []string{`up`, `{__name__=~".+"}`, `{namespace="canopy-a"}`,
		`{namespace=~"canopy-a"}`, `x{namespace=~".+"}`, `{"a.b"}`, `x{pod!~"a|b"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := EnforceSelector(tenantNS, in)
		if err != nil {
			if !errors.Is(err, ErrBadExpression) && !errors.Is(err, ErrForeignNamespace) {
				t.Fatalf("refusal of %q is neither bad nor foreign: %v", in, err)
			}
			return
		}
		inMS, err := promql.ParseMetricSelector(in)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", in, err)
		}
		outMS, err := promql.ParseMetricSelector(out)
		if err != nil {
			t.Fatalf("rewrote %q as %q, which does not parse: %v", in, out, err)
		}
		if got := namespaceMatchers(outMS); len(got) != 1 || got[0] != `namespace="canopy-a"` {
			t.Fatalf("rewrite %q of %q has namespace matchers %v", out, in, got)
		}
		// Every other matcher of the input is kept as it was.
		for _, m := range inMS {
			if m.Name != NamespaceLabel && !slices.Contains(matcherStrings(outMS), m.String()) {
				t.Fatalf("rewrite %q of %q lost matcher %s", out, in, m)
			}
		}
	})
}

// checkRefusal fails t unless err is one of the documented refusals and, for
// a foreign-namespace refusal, the input really has a namespace matcher other
// than namespace="canopy-a".
func checkRefusal(t *testing.T, in string, err error) {
	t.Helper()
	switch {
	case errors.Is(err, ErrBadExpression):
	case errors.Is(err, ErrForeignNamespace):
		ast, perr := promql.ParseExpr(in)
		if perr != nil {
			t.Fatalf("%q refused as foreign but does not parse: %v", in, perr)
		}
		for _, ms := range selectors(ast) {
			for _, m := range namespaceMatchers(ms) {
				if m != `namespace="canopy-a"` {
					return
				}
			}
		}
		t.Fatalf("%q refused as foreign, but asks only for canopy-a: %v", in, err)
	default:
		t.Fatalf("refusal of %q is neither bad nor foreign: %v", in, err)
	}
}

func selectors(ast parser.Expr) [][]*labels.Matcher {
	var out [][]*labels.Matcher
	parser.Inspect(ast, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.LabelMatchers)
		}
		return nil
	})
	return out
}

func namespaceMatchers(ms []*labels.Matcher) []string {
	var out []string
	for _, m := range ms {
		if m.Name == NamespaceLabel {
			out = append(out, m.String())
		}
	}
	return out
}
