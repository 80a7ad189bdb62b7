package promproxy

import (
	"errors"
	"fmt"
	"regexp/syntax"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// NamespaceLabel is the label that holds a series' Kubernetes namespace.
const NamespaceLabel = "namespace"

// Errors that EnforceExpr and EnforceSelector return, wrapped with details.
var (
	// ErrBadExpression means the text is not valid PromQL.
	ErrBadExpression = errors.New("bad PromQL expression")
	// ErrForeignNamespace means a selector asks for data outside the tenant's
	// namespace. Such a selector is refused, never rewritten into a broader one.
	ErrForeignNamespace = errors.New("selector reaches outside the project's namespace")
)

// promql parses with the defaults of the Prometheus server: no experimental
// functions and no unquoted UTF-8 names. An expression that needs them is
// refused as ErrBadExpression rather than guessed at.
var promql = parser.NewParser(parser.Options{})

// EnforceExpr parses the PromQL expression expr, limits every vector and
// matrix selector in it (inside functions, aggregations, binary operations and
// subqueries too) to series whose namespace label equals ns, and returns the
// rewritten expression.
//
// A selector that already has namespace matchers is kept only if every one
// of them is satisfied by ns alone: namespace="<ns>", or a regular expression
// that is the literal <ns>, as Grafana writes a single-valued variable.
// Any other namespace matcher fails with ErrForeignNamespace; text that does
// not parse fails with ErrBadExpression.
func EnforceExpr(ns, expr string) (string, error) {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadExpression, err)
	}

	var refusal error
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		matchers, err := restrict(ns, vs.LabelMatchers)
		if err != nil {
			refusal = fmt.Errorf("check selector %s: %w", vs, err)
			return err
		}
		vs.LabelMatchers = matchers
		return nil
	})
	if refusal != nil {
		return "", refusal
	}

	// Check the printed text, not only the tree: Prometheus will parse the text.
	out := ast.String()
	if err := verify(ns, out); err != nil {
		return "", fmt.Errorf("%w: rewritten as %q: %w", ErrBadExpression, out, err)
	}
	return out, nil
}

// errUnlimited means a rewritten expression holds a selector that is not
// limited to the namespace: a bug of the printer or of this package.
var errUnlimited = errors.New("selector not limited to the namespace")

// verify parses expr and checks that each of its selectors has exactly one
// namespace matcher, namespace="<ns>".
func verify(ns, expr string) error {
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		return fmt.Errorf("parse rewritten expression: %w", err)
	}
	var bad error
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && !limited(ns, vs.LabelMatchers) {
			bad = fmt.Errorf("%w: %s", errUnlimited, vs)
			return bad
		}
		return nil
	})
	return bad
}

// limited reports whether matchers hold exactly one namespace matcher, and
// that it is namespace="<ns>".
func limited(ns string, matchers []*labels.Matcher) bool {
	n := 0
	for _, m := range matchers {
		if m.Name != NamespaceLabel {
			continue
		}
		if m.Type != labels.MatchEqual || m.Value != ns {
			return false
		}
		n++
	}
	return n == 1
}

// EnforceSelector does for one series selector (a match[] parameter of the
// series and label endpoints) what EnforceExpr does for an expression.
func EnforceSelector(ns, selector string) (string, error) {
	matchers, err := promql.ParseMetricSelector(selector)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadExpression, err)
	}
	matchers, err = restrict(ns, matchers)
	if err != nil {
		return "", fmt.Errorf("check selector %s: %w", selector, err)
	}
	out := (&parser.VectorSelector{LabelMatchers: matchers}).String()
	if check, err := promql.ParseMetricSelector(out); err != nil || !limited(ns, check) {
		return "", fmt.Errorf("%w: rewritten as %q: %w", ErrBadExpression, out, errUnlimited)
	}
	return out, nil
}

// NamespaceSelector returns the series selector of every series in ns, which
// the label endpoints use when the client gives no match[].
func NamespaceSelector(ns string) string {
	vs := &parser.VectorSelector{LabelMatchers: []*labels.Matcher{namespaceMatcher(ns)}}
	return vs.String()
}

// restrict returns matchers without their namespace matchers and with
// namespace="<ns>" appended, or ErrForeignNamespace if a namespace matcher
// could select anything but ns.
func restrict(ns string, matchers []*labels.Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(matchers)+1)
	for _, m := range matchers {
		if m.Name != NamespaceLabel {
			out = append(out, m)
			continue
		}
		if !selectsOnly(m, ns) {
			return nil, fmt.Errorf("%w: matcher %s; this project may only read %s=%q",
				ErrForeignNamespace, m, NamespaceLabel, ns)
		}
	}
	return append(out, namespaceMatcher(ns)), nil
}

// selectsOnly reports whether the namespace matcher m matches ns and no other
// value: an equality, or a regular expression that is the plain literal ns.
func selectsOnly(m *labels.Matcher, ns string) bool {
	switch m.Type {
	case labels.MatchEqual:
		return m.Value == ns
	case labels.MatchRegexp:
		return isLiteralRegexp(m.Value, ns)
	default:
		return false
	}
}

// isLiteralRegexp reports whether expr, anchored as Prometheus anchors it,
// matches exactly the string lit: after simplification it is that literal,
// perhaps in a capture group, with case folding off.
func isLiteralRegexp(expr, lit string) bool {
	re, err := syntax.Parse(expr, syntax.Perl|syntax.DotNL)
	if err != nil {
		return false
	}
	re = re.Simplify()
	for re.Op == syntax.OpCapture && len(re.Sub) == 1 {
		re = re.Sub[0]
	}
	return re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0 && string(re.Rune) == lit
}

func namespaceMatcher(ns string) *labels.Matcher {
	return &labels.Matcher{Type: labels.MatchEqual, Name: NamespaceLabel, Value: ns}
}
