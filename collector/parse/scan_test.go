package parse

import (
	"bytes"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"canopy.dev/canopy/internal/testenv"
)

// got is one sample as a comparable value.
type got struct {
	series string // name and sorted labels, as labels.Labels.String
	value  float64
	ts     int64
	hasTS  bool
}

func sameValue(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b)
}

// scanAll reads every sample line with the Scanner; drops counts the lines
// it refused.
func scanAll(body []byte, f Format) (out []got, drops int) {
	var s Scanner
	s.Reset(body, f)
	for s.Next() {
		if err := s.Parse(); err != nil {
			drops++
			continue
		}
		b := labels.NewScratchBuilder(len(s.Labels()) + 1)
		b.Add(labels.MetricName, string(s.Name()))
		for _, l := range s.Labels() {
			b.Add(string(l.Name), string(l.Value))
		}
		b.Sort()
		ts, has := s.Timestamp()
		out = append(out, got{b.Labels().String(), s.Value(), ts, has})
	}
	return out, drops
}

// textparseAll reads every sample with Prometheus' parser, up to its first
// error. quirk reports a series the scanner deliberately reads otherwise: a
// raw line break inside a quoted value (which the text format forbids and
// the scanner takes as the end of the line), or a line indented by blanks
// (textparse keeps them in the metric name, the scanner does not).
func textparseAll(body []byte, contentType string) (out []got, err error, quirk bool) {
	p, err := textparse.New(slices.Clone(body), contentType, labels.NewSymbolTable(),
		textparse.ParserOptions{})
	if err != nil {
		return nil, err, false
	}
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return out, nil, quirk
		}
		if err != nil {
			return out, err, quirk
		}
		if e != textparse.EntrySeries {
			continue
		}
		series, ts, v := p.Series()
		quirk = quirk || bytes.IndexByte(series, '\n') >= 0 ||
			len(series) > 0 && (series[0] == ' ' || series[0] == '\t')
		var l labels.Labels
		p.Labels(&l)
		g := got{series: l.String(), value: v}
		if ts != nil {
			g.ts, g.hasTS = *ts, true
		}
		out = append(out, g)
	}
}

func sameSamples(a, b []got) bool {
	return slices.EqualFunc(a, b, func(x, y got) bool {
		return x.series == y.series && sameValue(x.value, y.value) &&
			x.ts == y.ts && x.hasTS == y.hasTS
	})
}

func TestScannerLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []got
		drops int
	}{
		{"plain", "m 1\n", []got{{`{__name__="m"}`, 1, 0, false}}, 0},
		{"labels and timestamp", `m{a="x",b="y"} 2.5 1700000000000` + "\n",
			[]got{{`{__name__="m", a="x", b="y"}`, 2.5, 1700000000000, true}}, 0},
		{"escapes decoded", `m{a="q\"b\\n\n\t"} 1`,
			[]got{{`{__name__="m", a="q\"b\\n\n\\t"}`, 1, 0, false}}, 0},
		{"comments and blank lines", "# HELP m x\n# TYPE m gauge\n\n  \nm 3\n",
			[]got{{`{__name__="m"}`, 3, 0, false}}, 0},
		{"quoted name", `{"my.metric",a="1"} 4` + "\n",
			[]got{{`{__name__="my.metric", a="1"}`, 4, 0, false}}, 0},
		{"bad line dropped alone", "m{a=\"1\" 1\nn 2\n",
			[]got{{`{__name__="n"}`, 2, 0, false}}, 1},
		{"invalid utf-8 dropped alone", "m{a=\"\xff\"} 1\nn 2\n",
			[]got{{`{__name__="n"}`, 2, 0, false}}, 1},
		{"no value", "m\nn 2\n", []got{{`{__name__="n"}`, 2, 0, false}}, 1},
		{"hex exponent refused", "m 0x1p3\n", nil, 1},
		{"no final newline", "m 1", []got{{`{__name__="m"}`, 1, 0, false}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, drops := scanAll([]byte(tt.in), Text)
			if !sameSamples(out, tt.want) || drops != tt.drops {
				t.Errorf("got %v (%d drops), want %v (%d drops)", out, drops, tt.want, tt.drops)
			}
		})
	}
}

// TestScannerLongLine: a line of several MiB costs only itself.
func TestScannerLongLine(t *testing.T) {
	long := `m{a="` + strings.Repeat("x", 5<<20) + "\n"
	body := []byte("a 1\n" + long + "b 2\n")
	out, drops := scanAll(body, Text)
	if len(out) != 2 || drops != 1 {
		t.Fatalf("got %d samples and %d drops, want 2 and 1", len(out), drops)
	}
}

func TestScannerOpenMetrics(t *testing.T) {
	in := "# TYPE m counter\nm_total{a=\"1\"} 3 1700000000.5 # {trace=\"x\"} 1\n" +
		"g 2\n# EOF\nafter 1\n"
	want := []got{
		{`{__name__="m_total", a="1"}`, 3, 1700000000500, true},
		{`{__name__="g"}`, 2, 0, false},
	}
	out, drops := scanAll([]byte(in), OpenMetrics)
	if !sameSamples(out, want) || drops != 0 {
		t.Fatalf("got %v (%d drops), want %v", out, drops, want)
	}
	// textparse refuses lines after # EOF; the scanner ignores them.
	valid := strings.TrimSuffix(in, "after 1\n")
	tp, err, _ := textparseAll([]byte(valid), "application/openmetrics-text; version=1.0.0")
	if err != nil || !sameSamples(tp, want) {
		t.Fatalf("textparse disagrees with the expectation: %v %v", tp, err)
	}
}

func TestFormatOf(t *testing.T) {
	tests := []struct {
		ct   string
		want Format
		err  error
	}{
		{"", Text, nil},
		{"text/plain; version=0.0.4; charset=utf-8", Text, nil},
		{"application/openmetrics-text; version=1.0.0; charset=utf-8", OpenMetrics, nil},
		{"application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily", Text,
			ErrProtobuf},
		{"application/json", Text, ErrContentType},
	}
	for _, tt := range tests {
		f, err := FormatOf(tt.ct)
		if f != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("FormatOf(%q) = %v, %v; want %v, %v", tt.ct, f, err, tt.want, tt.err)
		}
	}
}

// TestScannerFixtures: on every real text fixture the scanner reads the
// same samples as Prometheus' parser.
func TestScannerFixtures(t *testing.T) {
	for _, name := range textFixtures {
		t.Run(name, func(t *testing.T) {
			body := testenv.Fixture(t, name)
			want, err, _ := textparseAll(body, "text/plain")
			if err != nil {
				t.Fatalf("textparse: %v", err)
			}
			out, drops := scanAll(body, Text)
			if drops != 0 || !sameSamples(out, want) {
				t.Fatalf("scanner: %d samples, %d drops; textparse: %d samples",
					len(out), drops, len(want))
			}
		})
	}
}

var textFixtures = []string{
	"cadvisor-standalone-fake-docker.prometheus_metrics.txt",
	"kubelet-1.18-minikube-docker-systemd-cgroupv1.metrics-cadvisor.txt",
	"kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt",
	"kubelet-1.21-kind-containerd.metrics-resource.txt",
	"kubelet-1.22-minikube-containerd-cgroupv2.metrics-cadvisor.txt",
	"kubelet-1.35-minikube-containerd2-cgroupv2-psi.metrics-cadvisor.txt",
	"kubelet-post1.16-kind-containerd.metrics-cadvisor.txt",
}

// FuzzScannerText compares the scanner with Prometheus' textparse: when
// textparse reads the whole input, the scanner reads the same samples and
// drops nothing; when textparse stops at an error, the samples it read
// before are the scanner's first samples (the scanner drops the bad line
// and goes on, and ignores malformed HELP and TYPE comments).
func FuzzScannerText(f *testing.F) {
	for _, s := range []string{
		"m 1\n", `m{a="x",b="y\"\\\n"} 2 3` + "\n", "# HELP m h\n# TYPE m counter\nm 1\n",
		`{"q.name",a="1"} 1` + "\n", "m{a=\"1\",} NaN\nm -Inf 5\n", "m{ a = \"1\" b=\"2\" } 1",
		"m 1e400\n", "m 1 99999999999999999999\n", "m{a=\"\xff\"} 1\nn 2\n", "m-1 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.IndexByte(body, 0) >= 0 {
			// textparse reads a NUL at the start of a line as the end of input.
			t.Skip()
		}
		want, err, quirk := textparseAll(body, "text/plain")
		if quirk {
			t.Skip()
		}
		out, drops := scanAll(body, Text)
		if err == nil && (drops != 0 || !sameSamples(out, want)) {
			t.Fatalf("textparse read %v; scanner read %v with %d drops", want, out, drops)
		}
		if err != nil && (len(out) < len(want) || !sameSamples(out[:len(want)], want)) {
			t.Fatalf("textparse read %v before %v; scanner read %v", want, err, out)
		}
	})
}

// FuzzScannerOpenMetrics: any input is read without panic, and when
// Prometheus' OpenMetrics parser accepts it, the scanner reads the same
// samples.
func FuzzScannerOpenMetrics(f *testing.F) {
	for _, s := range []string{
		"m 1\n# EOF\n", "# TYPE c counter\nc_total{a=\"1\"} 2 1.5 # {t=\"x\"} 1\n# EOF\n",
		"g{a=\"\\\"\"} 1 2\n# EOF\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, drops := scanAll(body, OpenMetrics)
		if bytes.IndexByte(body, 0) >= 0 {
			t.Skip()
		}
		want, err, quirk := textparseAll(body, "application/openmetrics-text")
		if err != nil || quirk || !bytes.HasSuffix(body, []byte("# EOF\n")) {
			return
		}
		if drops != 0 || !sameSamples(out, want) {
			t.Fatalf("textparse read %v; scanner read %v with %d drops", want, out, drops)
		}
	})
}
