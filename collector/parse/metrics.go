package parse

import (
	"bytes"
	"errors"
	"io"
	"math"
)

// Family is a metric family that Canopy reads from /metrics/cadvisor,
// /metrics/resource or standalone cAdvisor.
type Family uint8

// Families Canopy reads; every other family is skipped unparsed.
const (
	FamilyNone           Family = iota
	CPUUsage                    // container_cpu_usage_seconds_total
	MemoryWorkingSet            // container_memory_working_set_bytes
	MemoryRSS                   // container_memory_rss
	FilesystemUsage             // container_fs_usage_bytes
	NetworkReceive              // container_network_receive_bytes_total
	NetworkTransmit             // container_network_transmit_bytes_total
	OOMEvents                   // container_oom_events_total
	StartTime                   // container_start_time_seconds
	PodCPUUsage                 // pod_cpu_usage_seconds_total (/metrics/resource)
	PodMemoryWorkingSet         // pod_memory_working_set_bytes (/metrics/resource)
	NodeCPUUsage                // node_cpu_usage_seconds_total (/metrics/resource)
	NodeMemoryWorkingSet        // node_memory_working_set_bytes (/metrics/resource)
	ScrapeError                 // container_scrape_error, scrape_error, resource_scrape_error
	MachineScrapeError          // machine_scrape_error
	NumFamilies                 // number of families, for arrays indexed by Family
)

// familyOf returns the family of a metric name, FamilyNone for the others.
func familyOf(name []byte) Family {
	switch string(name) {
	case "container_cpu_usage_seconds_total":
		return CPUUsage
	case "container_memory_working_set_bytes":
		return MemoryWorkingSet
	case "container_memory_rss":
		return MemoryRSS
	case "container_fs_usage_bytes":
		return FilesystemUsage
	case "container_network_receive_bytes_total":
		return NetworkReceive
	case "container_network_transmit_bytes_total":
		return NetworkTransmit
	case "container_oom_events_total":
		return OOMEvents
	case "container_start_time_seconds":
		return StartTime
	case "pod_cpu_usage_seconds_total":
		return PodCPUUsage
	case "pod_memory_working_set_bytes":
		return PodMemoryWorkingSet
	case "node_cpu_usage_seconds_total":
		return NodeCPUUsage
	case "node_memory_working_set_bytes":
		return NodeMemoryWorkingSet
	case "container_scrape_error", "scrape_error", "resource_scrape_error":
		return ScrapeError
	case "machine_scrape_error":
		return MachineScrapeError
	}
	return FamilyNone
}

// Sample is one sample of a family Canopy reads, with the labels it needs,
// under one name whatever the kubelet or cAdvisor version wrote. Byte slices
// are only valid inside the callback that receives the sample.
type Sample struct {
	Family    Family
	Namespace []byte // namespace, or standalone cAdvisor's ..._pod_namespace
	Pod       []byte // pod, pod_name before 1.16, or ..._pod_name
	Container []byte // container, container_name before 1.16, or ..._container_name
	Image     []byte
	ID        []byte // the cgroup path
	Interface []byte
	CPU       []byte // "total", or "cpu00"... on kubelets without a total
	Device    []byte
	Sandbox   bool // standalone cAdvisor marked it a pod sandbox

	Value        float64
	Timestamp    int64 // milliseconds; 0 when HasTimestamp is false
	HasTimestamp bool
}

// Drop reasons, as counted in Stats and exposed in metrics.
const (
	DropSyntax   = "syntax"    // the line is not a valid sample
	DropUTF8     = "utf8"      // a label value is not valid UTF-8
	DropNaN      = "nan"       // the value is NaN
	DropInf      = "inf"       // the value is ±Inf
	DropZeroTime = "zero_time" // a start time at Go's zero time
)

// goZeroTime is time.Time{}.Unix(): what cAdvisor writes as the start time of
// a container it knows nothing about.
const goZeroTime = -62135596800

// Stats counts what one body held.
type Stats struct {
	Lines   int            // sample lines seen, of any family
	Samples int            // samples of Canopy's families passed on
	Dropped map[string]int // lines of Canopy's families dropped, by reason
}

func (st *Stats) drop(reason string) {
	if st.Dropped == nil {
		st.Dropped = make(map[string]int, 2)
	}
	st.Dropped[reason]++
}

// Metrics reads a text or OpenMetrics body from /metrics/cadvisor,
// /metrics/resource or standalone cAdvisor and calls fn for each sample of
// Canopy's families. A line that cannot be read, or whose value is NaN or
// ±Inf, or a start time at Go's zero time, is dropped and counted in Stats;
// the rest of the body still counts. Lines of other families are only
// counted, and lines that cannot be named are counted as syntax drops.
func (s *Scanner) Metrics(body []byte, f Format, fn func(*Sample)) Stats {
	var st Stats
	s.Reset(body, f)
	s.scan(&st, fn)
	return st
}

// MetricsFrom reads a body like Metrics, but from r a window at a time, so
// that only the window is in memory however large the body is: the same
// body gives the same samples and Stats. *window is the buffer to read
// into, grown when a line is longer than it and kept for the next call.
// It stops at the first error of r other than io.EOF and returns it with
// the Stats of the lines read so far.
func (s *Scanner) MetricsFrom(r io.Reader, f Format, window *[]byte,
	fn func(*Sample)) (Stats, error) {
	var st Stats
	buf := (*window)[:0]
	defer func() { *window = buf[:0] }()
	if cap(buf) == 0 {
		buf = make([]byte, 0, minWindow)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // a line longer than the window
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		// Whole lines only, but all of them at the end of the body. What was
		// kept from earlier reads has no line break.
		end := 0
		if i := bytes.LastIndexByte(buf[len(buf)-n:], '\n'); i >= 0 {
			end = len(buf) - n + i + 1
		}
		if errors.Is(err, io.EOF) {
			end = len(buf)
		}
		if end > 0 {
			s.Reset(buf[:end], f)
			if s.scan(&st, fn) {
				return st, nil // OpenMetrics' # EOF: the rest is not read
			}
			buf = buf[:copy(buf, buf[end:])]
		}
		switch {
		case errors.Is(err, io.EOF):
			return st, nil
		case err != nil:
			return st, err
		}
	}
}

// minWindow is the smallest window MetricsFrom reads into.
const minWindow = 32 << 10

// scan reads the lines of the body set by Reset into st and fn. It reports
// whether it stopped at OpenMetrics' "# EOF".
func (s *Scanner) scan(st *Stats, fn func(*Sample)) bool {
	var smp Sample
	for s.Next() {
		st.Lines++
		fam := FamilyNone
		if name := s.Name(); name != nil {
			fam = familyOf(name)
			if fam == FamilyNone {
				continue
			}
		}
		if err := s.Parse(); err != nil {
			st.drop(dropReason(err))
			continue
		}
		if fam == FamilyNone {
			// A `{"name"}` line: the name is known only now.
			if fam = familyOf(s.Name()); fam == FamilyNone {
				continue
			}
		}
		if reason := s.fill(&smp, fam); reason != "" {
			st.drop(reason)
			continue
		}
		st.Samples++
		fn(&smp)
	}
	return s.eof
}

func dropReason(err error) string {
	if errors.Is(err, ErrUTF8) {
		return DropUTF8
	}
	return DropSyntax
}

// fill sets smp from the current line, or returns why the line is dropped.
func (s *Scanner) fill(smp *Sample, fam Family) string {
	v := s.Value()
	switch {
	case math.IsNaN(v):
		return DropNaN
	case math.IsInf(v, 0):
		return DropInf
	case fam == StartTime && v == goZeroTime:
		return DropZeroTime
	}

	*smp = Sample{Family: fam, Value: v}
	smp.Timestamp, smp.HasTimestamp = s.Timestamp()
	var podName, containerName []byte
	for _, l := range s.Labels() {
		switch string(l.Name) {
		case "namespace", "container_label_io_kubernetes_pod_namespace":
			smp.Namespace = pick(smp.Namespace, l.Value)
		case "pod", "container_label_io_kubernetes_pod_name":
			smp.Pod = pick(smp.Pod, l.Value)
		case "pod_name":
			podName = l.Value
		case "container", "container_label_io_kubernetes_container_name":
			smp.Container = pick(smp.Container, l.Value)
		case "container_name":
			containerName = l.Value
		case "image":
			smp.Image = l.Value
		case "id":
			smp.ID = l.Value
		case "interface":
			smp.Interface = l.Value
		case "cpu":
			smp.CPU = l.Value
		case "device":
			smp.Device = l.Value
		case "container_label_io_cri_containerd_kind":
			smp.Sandbox = smp.Sandbox || string(l.Value) == "sandbox"
		case "container_label_io_kubernetes_docker_type":
			smp.Sandbox = smp.Sandbox || string(l.Value) == "podsandbox"
		}
	}
	smp.Pod = pick(smp.Pod, podName)
	smp.Container = pick(smp.Container, containerName)
	return ""
}

// pick keeps the value already set unless it is empty.
func pick(have, next []byte) []byte {
	if len(have) > 0 {
		return have
	}
	return next
}
