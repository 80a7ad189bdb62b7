package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"canopy.dev/canopy/collector/source"
	"canopy.dev/canopy/internal/testenv"
)

// TestStreamedCycleMatchesCycle: payloads added one at a time from many
// goroutines, their bodies read a few bytes at a time, give the figures and
// stats that Cycle gives with every body at once.
func TestStreamedCycleMatchesCycle(t *testing.T) {
	large := testenv.Fixture(t, "kubelet-1.21-aws-docker20-cgroupv1-large.metrics-cadvisor.txt")
	small := cad("t", "p", "a", "i", "/c", 100, 10, 1000, 100) +
		netSeries("t", "p", "POD", "pause", "/s", "eth0", 7, 9)
	var payloads []source.Payload
	for i := range 6 {
		body := string(large)
		if i%2 == 1 {
			body = small
		}
		payloads = append(payloads, payload(fmt.Sprintf("n%d", i), source.KubeletCadvisor, body))
	}
	failed := source.Payload{Target: source.Target{Node: "n9", Kind: source.KubeletCadvisor},
		StatusCode: 403, Err: errors.New("forbidden")}
	payloads = append(payloads, failed)

	whole, streamed := &clock{t0}, &clock{t0}
	a, b := newTest(whole), newTest(streamed)
	for range 2 {
		whole.now = whole.now.Add(15 * time.Second)
		streamed.now = whole.now
		want := a.Cycle(payloads, nil)

		b.BeginCycle()
		var wg sync.WaitGroup
		errs := make([]error, len(payloads))
		for i, p := range payloads {
			wg.Go(func() {
				var body io.Reader
				if p.Err == nil {
					body, p.Body = iotest.HalfReader(strings.NewReader(string(p.Body))), nil
				}
				errs[i] = b.AddFrom(p, body)
			})
		}
		wg.Wait()
		got := b.EndCycle(nil)

		if err := errors.Join(errs...); err != nil {
			t.Fatalf("AddFrom: %v", err)
		}
		got.Duration, want.Duration = 0, 0
		if got != want || want.Samples == 0 || want.Failed != 1 {
			t.Errorf("streamed stats %+v, Cycle's %+v", got, want)
		}
		// Nodes are summed in map order: float sums may differ in the last bit.
		if cu, want := b.ClusterUsage(), a.ClusterUsage(); !approxEqual(
			reflect.ValueOf(cu), reflect.ValueOf(want)) {
			t.Errorf("streamed usage differs from Cycle's:\n%+v\n%+v", cu, want)
		}
	}
}

// TestStreamReadErrorFailsTarget: a body that breaks off counts as a failed
// scrape with the reason of its error, and what was read of it is not
// trusted: its counters add nothing and its gauges are gone.
func TestStreamReadErrorFailsTarget(t *testing.T) {
	c := &clock{t0}
	a := newTest(c)
	good := cad("t", "p", "a", "i", "/c", 100, 10, 1000, 100)
	a.Cycle([]source.Payload{payload("n1", source.KubeletCadvisor, good)}, nil)

	c.now = c.now.Add(15 * time.Second)
	grown := cad("t", "p", "a", "i", "/c", 100, 50, 2000, 100)
	timeout := fmt.Errorf("read body: %w", context.DeadlineExceeded)
	body := io.MultiReader(strings.NewReader(grown), iotest.ErrReader(timeout))
	p := payload("n1", source.KubeletCadvisor, "")
	p.Body = nil
	a.BeginCycle()
	if err := a.AddFrom(p, body); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AddFrom: %v, want the read error", err)
	}
	st := a.EndCycle(nil)

	if st.Failed != 1 || st.Payloads != 1 {
		t.Errorf("stats %+v, want one failed payload", st)
	}
	up := map[string]string{"node": "n1", "endpoint": "kubelet-cadvisor"}
	check(t, "up", value(t, a, "canopy_target_up", up), 0)
	check(t, "errors", value(t, a, "canopy_scrape_errors_total",
		map[string]string{"node": "n1", "reason": "timeout"}), 1)
	check(t, "cpu", nsValue(t, a, "cpu_usage_seconds_total", "t"), 10)
	check(t, "working set", nsValue(t, a, "memory_working_set_bytes", "t"), 0)
}

// approxEqual is reflect.DeepEqual with floats equal to 1e-12 relative.
func approxEqual(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Float64:
		x, y := a.Float(), b.Float()
		return math.Abs(x-y) <= 1e-12*math.Max(1, math.Abs(y))
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[time.Time]() {
			return a.Interface().(time.Time).Equal(b.Interface().(time.Time))
		}
		for i := range a.NumField() {
			if !approxEqual(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !approxEqual(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if !b.MapIndex(k).IsValid() || !approxEqual(a.MapIndex(k), b.MapIndex(k)) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}
