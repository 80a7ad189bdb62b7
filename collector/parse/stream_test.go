package parse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"canopy.dev/canopy/internal/testenv"
)

// chunkReader hands out its body size bytes at a time.
type chunkReader struct {
	body []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.body) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.body)
	r.body = r.body[n:]
	return n, nil
}

// collectFrom is collect through MetricsFrom, reading size bytes at a time
// into a window that starts at window bytes.
func collectFrom(t testing.TB, body []byte, f Format, size, window int) ([]flat, Stats) {
	t.Helper()
	var s Scanner
	var out []flat
	buf := make([]byte, 0, window)
	st, err := s.MetricsFrom(&chunkReader{body, size}, f, &buf, func(x *Sample) {
		out = append(out, flat{x.Family, string(x.Namespace), string(x.Pod),
			string(x.Container), string(x.Image), string(x.CPU), string(x.Interface),
			x.Sandbox, x.Value})
	})
	if err != nil {
		t.Fatalf("MetricsFrom: %v", err)
	}
	return out, st
}

// TestMetricsFromMatchesMetrics: reading the largest fixture through a
// small window, in reads of any size, gives what reading it whole gives.
func TestMetricsFromMatchesMetrics(t *testing.T) {
	body := testenv.Fixture(t, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
	want, wantSt := collect(string(body), Text)
	if len(want) == 0 {
		t.Fatal("the fixture gave no samples")
	}
	for _, c := range []struct{ size, window int }{
		{1, 16}, {7, 64}, {4096, 1024}, {4096, minWindow}, {len(body), minWindow},
	} {
		got, st := collectFrom(t, body, Text, c.size, c.window)
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(st, wantSt) {
			t.Errorf("reads of %d into a %d-byte window: %d samples %+v, want %d %+v",
				c.size, c.window, len(got), st.Dropped, len(want), wantSt.Dropped)
		}
	}
}

// TestMetricsFromLongLineAndEOF: a line longer than the window is read
// whole, a bad line is dropped alone, and nothing after OpenMetrics'
// # EOF is read.
func TestMetricsFromLongLineAndEOF(t *testing.T) {
	long := `container_memory_rss{namespace="n",pod="` + string(bytes.Repeat([]byte("p"), 3<<20)) +
		`",image="i",container="c"} 5`
	body := long + "\ncontainer_memory_rss{\ncontainer_memory_rss{namespace=\"n\",pod=\"q\"} 6\n" +
		"# EOF\ncontainer_memory_rss{namespace=\"n\",pod=\"r\"} 7\n"
	got, st := collectFrom(t, []byte(body), OpenMetrics, 1000, 64)
	if len(got) != 2 || len(got[0].pod) != 3<<20 || got[0].value != 5 || got[1].pod != "q" {
		t.Fatalf("got %d samples (%+v)", len(got), st)
	}
	if st.Lines != 3 || st.Dropped[DropSyntax] != 1 {
		t.Errorf("stats %+v, want 3 lines and one syntax drop", st)
	}
}

// TestMetricsFromReadError: a failed read ends the body with its error, and
// the lines before it are counted.
func TestMetricsFromReadError(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader([]byte("container_memory_rss{namespace=\"n\",pod=\"p\"} 1\n"+
		"container_memory_rss{namespace=\"n\",pod=\"q\"} 2")), iotest.ErrReader(boom))
	var s Scanner
	var buf []byte
	n := 0
	st, err := s.MetricsFrom(r, Text, &buf, func(*Sample) { n++ })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the read error", err)
	}
	if n != 1 || st.Samples != 1 {
		t.Errorf("%d samples before the error (%+v), want the one whole line", n, st)
	}
}

// FuzzMetricsFrom: any body, read in reads of any size through any window,
// gives the samples and Stats that Metrics gives on the whole body.
func FuzzMetricsFrom(f *testing.F) {
	f.Add([]byte("container_memory_rss{namespace=\"n\",pod=\"p\"} 1 2\nx 1\n"), uint8(3), uint8(1))
	f.Add([]byte("# EOF\ncontainer_memory_rss{namespace=\"n\",pod=\"p\"} 1\n"), uint8(1), uint8(0))
	f.Add([]byte("container_cpu_usage_seconds_total{cpu=\"cpu00\",pod_name=\"p\"} NaN\n\n{"),
		uint8(200), uint8(4))
	f.Fuzz(func(t *testing.T, body []byte, size, window uint8) {
		for _, format := range []Format{Text, OpenMetrics} {
			want, wantSt := collect(string(body), format)
			got, st := collectFrom(t, body, format, int(size)+1, int(window)+1)
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(st, wantSt) {
				t.Fatalf("format %d: MetricsFrom read %v %+v; Metrics read %v %+v",
					format, got, st, want, wantSt)
			}
		}
	})
}
