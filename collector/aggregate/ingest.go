package aggregate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"canopy.dev/canopy/collector/parse"
	"canopy.dev/canopy/collector/source"
)

// Error reasons counted in canopy_scrape_errors_total besides HTTP statuses.
const (
	reasonTimeout     = "timeout"
	reasonTransport   = "transport"
	reasonProtobuf    = "protobuf"
	reasonContentType = "content_type"
	reasonScrapeError = "scrape_error" // the kubelet said container_scrape_error 1
	reasonNoData      = "no_data"      // no container figures at all (e.g. Windows)
	reasonInvalid     = "invalid_body"
	reasonMachine     = "machine_scrape_error"
)

// target is the health of one endpoint of one node.
type target struct {
	node     string
	kind     source.Kind
	up       bool
	seen     bool
	duration time.Duration
	samples  int
	errors   map[string]float64 // by reason, since start
	dropped  map[string]float64 // by reason, since start
	lastErr  error              // why the last failed scrape failed
}

func (t *target) countError(reason string) {
	if t.errors == nil {
		t.errors = make(map[string]float64, 1)
	}
	t.errors[reason]++
}

func (t *target) countDrops(d map[string]int) {
	for reason, n := range d {
		if t.dropped == nil {
			t.dropped = make(map[string]float64, 1)
		}
		t.dropped[reason] += float64(n)
	}
}

// failureReason names why a scrape failed, for canopy_scrape_errors_total.
func failureReason(p *source.Payload) string {
	var ne net.Error
	switch {
	case p.StatusCode >= 400:
		return fmt.Sprintf("http_%d", p.StatusCode)
	case errors.Is(p.Err, context.DeadlineExceeded), errors.As(p.Err, &ne) && ne.Timeout():
		return reasonTimeout
	}
	return reasonTransport
}

// ingest parses one good payload into sc, from body if it is not nil, else
// from p.Body. It returns the reason the payload counts as failed, or ""
// when its data is good, and the error that ended the reading of body.
func (n *node) ingest(sc *scrape, p *source.Payload, body io.Reader,
	t *target) (string, error) {
	if sc.kind == source.KubeletSummary {
		if body != nil {
			n.logErr = fmt.Errorf("read summary: %w", errStreamedJSON)
			return reasonInvalid, n.logErr
		}
		s, err := parse.Summary(p.Body)
		if err != nil {
			n.logErr = err
			return reasonInvalid, nil
		}
		t.samples = len(s.Pods)
		sc.sum = s
		return "", nil
	}

	format, err := parse.FormatOf(p.ContentType)
	switch {
	case errors.Is(err, parse.ErrProtobuf):
		n.logErr = err
		return reasonProtobuf, nil
	case err != nil:
		n.logErr = err
		return reasonContentType, nil
	}

	sc.gen++
	n.scrapeErr, n.machineErr, n.maxTs, n.containerSamples = false, false, 0, 0
	n.curScrape, n.curKind = sc, sc.kind
	st, readErr := n.scan(p, body, format)
	t.samples = st.Samples
	t.countDrops(st.Dropped)
	if readErr != nil {
		n.logErr = readErr
		return failureReason(&source.Payload{StatusCode: p.StatusCode, Err: readErr}), readErr
	}
	n.dropStale(sc)

	if n.machineErr {
		t.countError(reasonMachine)
	}
	switch {
	case n.scrapeErr:
		return reasonScrapeError, nil
	case len(sc.inst) == 0 || n.containerSamples == 0:
		return reasonNoData, nil
	}
	return "", nil
}

// errStreamedJSON means a /stats/summary body came as a reader: it is read
// whole, never a window at a time.
var errStreamedJSON = errors.New("JSON body handed as a stream")

// windows are the buffers bodies handed as readers are read through. Only
// the payloads being read hold one, whatever the number of nodes.
var windows = sync.Pool{New: func() any { return new([]byte) }}

// scan reads the payload's samples into the current scrape, from body a
// window at a time when it is not nil. It adds the time spent reading body
// to the endpoint's duration.
func (n *node) scan(p *source.Payload, body io.Reader, format parse.Format) (parse.Stats, error) {
	if body == nil {
		return n.scanner.Metrics(p.Body, format, n.addSample), nil
	}
	start := time.Now()
	w := windows.Get().(*[]byte)
	defer windows.Put(w)
	st, err := n.scanner.MetricsFrom(body, format, w, n.addSample)
	n.targets[p.Target.Kind].duration += time.Since(start)
	return st, err
}

// addSample stores one parsed sample into the current scrape's instances.
func (n *node) addSample(s *parse.Sample) {
	switch s.Family {
	case parse.ScrapeError:
		n.scrapeErr = n.scrapeErr || s.Value != 0
		return
	case parse.MachineScrapeError:
		n.machineErr = n.machineErr || s.Value != 0
		return
	case parse.NodeCPUUsage:
		n.curScrape.nodeCPU = s.Value
		return
	case parse.NodeMemoryWorkingSet:
		n.curScrape.nodeMem = s.Value
		return
	}
	if len(s.Namespace) == 0 || len(s.Pod) == 0 {
		return // node and system cgroups are never counted
	}
	n.containerSamples++
	if s.HasTimestamp {
		n.maxTs = max(n.maxTs, s.Timestamp)
	}

	// /metrics/resource's pod_* families are the pod cgroup's figures.
	fam := s.Family
	switch fam {
	case parse.PodCPUUsage:
		fam, s.Container = parse.CPUUsage, nil
	case parse.PodMemoryWorkingSet:
		fam, s.Container = parse.MemoryWorkingSet, nil
	}

	i := n.lookup(s)
	switch fam {
	case parse.CPUUsage:
		if len(s.CPU) != 0 && string(s.CPU) != "total" {
			i.perCPU += s.Value
			i.perCPUTs, i.hasPer = max(i.perCPUTs, s.Timestamp), true
			return
		}
	case parse.NetworkReceive, parse.NetworkTransmit:
		i.addNet(s)
		return
	case parse.FilesystemUsage:
		// One series per device: the container's usage is their sum.
		i.val[fam] += s.Value
		i.ts[fam], i.has[fam] = max(i.ts[fam], s.Timestamp), true
		return
	}
	i.val[fam], i.ts[fam], i.has[fam] = s.Value, s.Timestamp, true
}

// lookup returns the instance a sample belongs to, creating it on first
// sight. The key is built in a reused buffer, so a known instance costs no
// allocation.
func (n *node) lookup(s *parse.Sample) *instance {
	k := n.key[:0]
	k = append(k, s.Namespace...)
	k = append(k, 0)
	k = append(k, s.Pod...)
	k = append(k, 0)
	k = append(k, s.Container...)
	k = append(k, 0)
	k = append(k, s.ID...)
	n.key = k

	sc := n.curScrape
	i, ok := sc.inst[string(k)]
	if !ok {
		i = &instance{
			ns: string(s.Namespace), pod: string(s.Pod), container: string(s.Container),
			id: string(s.ID),
		}
		sc.inst[string(k)] = i
	}
	if i.gen != sc.gen {
		i.reset(sc.gen)
		if string(s.Image) != i.image {
			i.image = string(s.Image)
		}
		i.sandbox = false
	}
	if len(s.Image) != 0 && i.image == "" {
		i.image = string(s.Image)
	}
	i.sandbox = i.sandbox || s.Sandbox
	return i
}

// addNet stores a network sample under its interface.
func (i *instance) addNet(s *parse.Sample) {
	var f *ifaceSample
	for k := range i.nets {
		if i.nets[k].name == string(s.Interface) {
			f = &i.nets[k]
			break
		}
	}
	if f == nil {
		// Reuse the slot of the last scrape, and its name when it matches.
		if len(i.nets) < cap(i.nets) {
			i.nets = i.nets[:len(i.nets)+1]
		} else {
			i.nets = append(i.nets, ifaceSample{})
		}
		f = &i.nets[len(i.nets)-1]
		name := f.name
		if name != string(s.Interface) {
			name = string(s.Interface)
		}
		*f = ifaceSample{name: name}
	}
	if s.Family == parse.NetworkReceive {
		f.rx, f.rxTs, f.hasRx = s.Value, s.Timestamp, true
	} else {
		f.tx, f.txTs, f.hasTx = s.Value, s.Timestamp, true
	}
}

// dropStale forgets instances the scrape no longer reported, and every
// sample whose own timestamp is more than staleAfter older than the newest
// sample of the scrape.
func (n *node) dropStale(sc *scrape) {
	limit := n.maxTs - n.staleAfter.Milliseconds()
	for k, i := range sc.inst {
		if i.gen != sc.gen {
			delete(sc.inst, k)
			continue
		}
		if n.maxTs == 0 {
			continue
		}
		for f := range i.has {
			if i.has[f] && i.ts[f] != 0 && i.ts[f] < limit {
				i.has[f], i.val[f] = false, 0
			}
		}
		if i.hasPer && i.perCPUTs != 0 && i.perCPUTs < limit {
			i.hasPer, i.perCPU = false, 0
		}
		for k := range i.nets {
			f := &i.nets[k]
			f.hasRx = f.hasRx && (f.rxTs == 0 || f.rxTs >= limit)
			f.hasTx = f.hasTx && (f.txTs == 0 || f.txTs >= limit)
		}
	}
}
