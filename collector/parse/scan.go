// Package parse reads what kubelets and cAdvisor answer: the Prometheus text
// format and OpenMetrics (/metrics/cadvisor, /metrics/resource, standalone
// cAdvisor /metrics) and the kubelet's /stats/summary JSON.
//
// The text reader is a streaming, line-based scanner written for the few
// families Canopy uses: a line of another family is skipped after its name,
// without building its labels, and a line that cannot be read is dropped on
// its own and counted, so a broken line, a line of several MiB or invalid
// UTF-8 never loses the rest of the scrape. Returned bytes point into the
// body or into the scanner's scratch buffer and stay valid only until the
// next call to Next.
//
// The package knows nothing of HTTP, nodes or aggregation rules: it turns
// bytes into samples (see Metrics and Summary) and leaves the choices to
// collector/aggregate.
package parse

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Format is an exposition format that the scanner reads.
type Format uint8

// Formats the scanner reads.
const (
	Text        Format = iota // Prometheus text format 0.0.4
	OpenMetrics               // OpenMetrics 1.0 text
)

// Sentinel errors of the parse package.
var (
	// ErrProtobuf is returned for a protobuf exposition, which Canopy does not
	// decode: it asks for text and OpenMetrics only.
	ErrProtobuf = errors.New("protobuf exposition is not supported: ask for text or OpenMetrics")
	// ErrContentType is returned for a content type that is no exposition.
	ErrContentType = errors.New("unsupported content type")
	// ErrSyntax is returned for a line that is not a valid sample.
	ErrSyntax = errors.New("invalid sample line")
	// ErrUTF8 is returned for a label value that is not valid UTF-8.
	ErrUTF8 = errors.New("label value is not valid UTF-8")
)

// FormatOf returns the format of a response's Content-Type. An empty or
// unparsable type is read as the text format, as Prometheus does by default.
func FormatOf(contentType string) (Format, error) {
	if strings.TrimSpace(contentType) == "" {
		return Text, nil
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return Text, nil
	}
	switch mediaType {
	case "text/plain", "":
		return Text, nil
	case "application/openmetrics-text":
		return OpenMetrics, nil
	case "application/vnd.google.protobuf":
		return Text, ErrProtobuf
	}
	return Text, fmt.Errorf("read content type %q: %w", mediaType, ErrContentType)
}

// Label is one decoded label of the current sample.
type Label struct {
	Name  []byte
	Value []byte
}

// Scanner reads an exposition one sample line at a time. Its zero value is
// ready after Reset; reuse one Scanner across scrapes to keep its buffers.
type Scanner struct {
	body   []byte
	pos    int
	format Format
	eof    bool // OpenMetrics' "# EOF" was read

	line    []byte // the current line, without its line break
	name    []byte // the metric name; nil until parsed for `{"name"}` lines
	after   int    // offset in line just after an unquoted name
	parsed  bool
	err     error
	labels  []Label
	scratch []byte // decoded escapes of names and values
	value   float64
	ts      int64
	hasTS   bool
}

// Reset makes s read body in format f from the start.
func (s *Scanner) Reset(body []byte, f Format) {
	s.body, s.pos, s.format, s.eof = body, 0, f, false
	s.line, s.name = nil, nil
}

// Next moves to the next sample line, skipping comments and blank lines.
// It returns false at the end of the body (or at OpenMetrics' "# EOF").
// A line whose name cannot be read is still returned, with Name nil and
// Parse returning the error, so that the caller can count it.
func (s *Scanner) Next() bool {
	for s.pos < len(s.body) {
		line := s.nextLine()
		i := skipSpace(line, 0)
		if i == len(line) {
			continue
		}
		if line[i] == '#' {
			if s.format == OpenMetrics && isEOF(line) {
				s.pos, s.eof = len(s.body), true
				return false
			}
			continue
		}
		s.start(line, i)
		return true
	}
	return false
}

// nextLine returns the line at s.pos and moves past its line break.
func (s *Scanner) nextLine() []byte {
	rest := s.body[s.pos:]
	end := bytes.IndexByte(rest, '\n')
	if end < 0 {
		s.pos = len(s.body)
		return rest
	}
	s.pos += end + 1
	return rest[:end]
}

func isEOF(line []byte) bool {
	return string(bytes.TrimRight(line, " \t")) == "# EOF"
}

// start readies the sample line whose first non-blank byte is at i.
func (s *Scanner) start(line []byte, i int) {
	s.line, s.name, s.parsed, s.err = line, nil, false, nil
	s.labels, s.scratch = s.labels[:0], s.scratch[:0]
	if line[i] == '{' {
		// The name is quoted inside the braces: read the whole line now.
		s.after = i
		s.parseRest()
		return
	}
	j := i
	for j < len(line) && isNameByte(line[j], j > i) {
		j++
	}
	if j == i {
		s.parsed, s.err = true, fmt.Errorf("read metric name: %w", ErrSyntax)
		return
	}
	s.name, s.after = line[i:j], j
}

// Line returns the raw current line.
func (s *Scanner) Line() []byte { return s.line }

// Name returns the current line's metric name (nil if it could not be read).
func (s *Scanner) Name() []byte { return s.name }

// Parse reads the labels, value and timestamp of the current line. The
// error wraps ErrSyntax or ErrUTF8.
func (s *Scanner) Parse() error {
	if !s.parsed {
		s.parseRest()
	}
	return s.err
}

// Labels returns the current line's labels, in the order written, without
// the metric name. Call it after Parse returned nil.
func (s *Scanner) Labels() []Label { return s.labels }

// Value returns the current sample's value.
func (s *Scanner) Value() float64 { return s.value }

// Timestamp returns the current sample's timestamp in milliseconds and
// whether the line had one.
func (s *Scanner) Timestamp() (int64, bool) { return s.ts, s.hasTS }

// parseRest reads the line from s.after: labels, value, timestamp.
func (s *Scanner) parseRest() {
	s.parsed = true
	line := s.line
	i := skipSpace(line, s.after)
	if i < len(line) && line[i] == '{' {
		var err error
		if i, err = s.parseLabels(line, i+1); err != nil {
			s.err = err
			return
		}
	}
	if s.name == nil {
		s.err = fmt.Errorf("read metric name: %w", ErrSyntax)
		return
	}
	s.err = s.parseValue(line, skipSpace(line, i))
}

// parseLabels reads labels from just after '{' and returns the offset
// after the closing '}'.
func (s *Scanner) parseLabels(line []byte, i int) (int, error) {
	for {
		i = skipSpace(line, i)
		if i >= len(line) {
			return i, fmt.Errorf("read labels: unclosed brace: %w", ErrSyntax)
		}
		if line[i] == '}' {
			return i + 1, nil
		}

		// A label name, or a quoted metric name followed by ',' or '}'.
		var name []byte
		switch c := line[i]; {
		case c == '"':
			q, end, err := s.quoted(line, i)
			if err != nil {
				return end, err
			}
			i = skipSpace(line, end)
			if i < len(line) && (line[i] == ',' || line[i] == '}') {
				if s.name != nil {
					return i, fmt.Errorf("read labels: metric name set twice: %w", ErrSyntax)
				}
				s.name = q
				if line[i] == ',' {
					i++
				}
				continue
			}
			name = q
		case isLabelByte(c, false):
			j := i + 1
			for j < len(line) && isLabelByte(line[j], true) {
				j++
			}
			name, i = line[i:j], skipSpace(line, j)
		default:
			return i, fmt.Errorf("read label name: %w", ErrSyntax)
		}

		// '=' and the quoted value.
		if i >= len(line) || line[i] != '=' {
			return i, fmt.Errorf("read label %q: expected '=': %w", name, ErrSyntax)
		}
		i = skipSpace(line, i+1)
		if i >= len(line) || line[i] != '"' {
			return i, fmt.Errorf("read label %q: expected value: %w", name, ErrSyntax)
		}
		value, end, err := s.quoted(line, i)
		if err != nil {
			return end, err
		}
		if !utf8.Valid(line[i:end]) {
			return end, fmt.Errorf("read label %q: %w", name, ErrUTF8)
		}
		s.labels = append(s.labels, Label{Name: name, Value: value})

		// An optional comma; textparse also accepts labels without one.
		i = skipSpace(line, end)
		if i < len(line) && line[i] == ',' {
			i++
		}
	}
}

// quoted reads the quoted string at line[i] == '"' and returns its decoded
// content (escapes \\, \" and \n; other escapes are kept as written) and the
// offset after the closing quote.
func (s *Scanner) quoted(line []byte, i int) ([]byte, int, error) {
	j := i + 1
	escaped := false
	for ; j < len(line); j++ {
		switch line[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			raw := line[i+1 : j]
			if !escaped {
				return raw, j + 1, nil
			}
			return s.unescape(raw), j + 1, nil
		}
	}
	return nil, len(line), fmt.Errorf("read quoted string: unterminated: %w", ErrSyntax)
}

// unescape decodes raw into the scratch buffer and returns the result. The
// scratch buffer only grows within a line, so earlier results stay valid.
func (s *Scanner) unescape(raw []byte) []byte {
	if cap(s.scratch)-len(s.scratch) < len(raw) {
		// Grow into a fresh array so slices already returned stay intact.
		grown := make([]byte, 0, 2*cap(s.scratch)+len(raw))
		s.scratch = grown
	}
	start := len(s.scratch)
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c == '\\' && k+1 < len(raw) {
			switch raw[k+1] {
			case '\\', '"':
				c = raw[k+1]
				k++
			case 'n':
				c = '\n'
				k++
			}
		}
		s.scratch = append(s.scratch, c)
	}
	return s.scratch[start:len(s.scratch):len(s.scratch)]
}

// parseValue reads the value and the optional timestamp at line[i].
func (s *Scanner) parseValue(line []byte, i int) error {
	j := i
	for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != '{' {
		j++
	}
	if j == i {
		return fmt.Errorf("read value: missing: %w", ErrSyntax)
	}
	if s.format == OpenMetrics {
		return s.parseOMSuffix(line, i, j)
	}
	v, err := parseFloat(line[i:j])
	if err != nil {
		return fmt.Errorf("read value: %w", ErrSyntax)
	}
	s.value, s.hasTS, s.ts = v, false, 0

	i = skipSpace(line, j)
	if i == len(line) {
		return nil
	}
	j = i
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j == i || skipSpace(line, j) != len(line) {
		return fmt.Errorf("read timestamp: %w", ErrSyntax)
	}
	ts, err := strconv.ParseInt(unsafeString(line[i:j]), 10, 64)
	if err != nil {
		return fmt.Errorf("read timestamp: %w", ErrSyntax)
	}
	s.ts, s.hasTS = ts, true
	return nil
}

// parseOMSuffix reads an OpenMetrics value at line[i:j], then an optional
// timestamp in seconds and an optional exemplar, which is ignored.
func (s *Scanner) parseOMSuffix(line []byte, i, j int) error {
	v, err := parseFloat(line[i:j])
	if err != nil {
		return fmt.Errorf("read value: %w", ErrSyntax)
	}
	s.value, s.hasTS, s.ts = v, false, 0

	i = skipSpace(line, j)
	if i == len(line) || line[i] == '#' {
		return nil
	}
	j = i
	for j < len(line) && line[j] != ' ' && line[j] != '\t' {
		j++
	}
	ts, err := parseFloat(line[i:j])
	if err != nil || ts != ts {
		return fmt.Errorf("read timestamp: %w", ErrSyntax)
	}
	s.ts, s.hasTS = int64(ts*1000), true
	if k := skipSpace(line, j); k != len(line) && line[k] != '#' {
		return fmt.Errorf("read timestamp: trailing text: %w", ErrSyntax)
	}
	return nil
}

// parseFloat parses a sample value as Prometheus does: Go's syntax without
// hexadecimal exponents or underscores.
func parseFloat(b []byte) (float64, error) {
	if bytes.ContainsAny(b, "pP_") {
		return 0, ErrSyntax
	}
	return strconv.ParseFloat(unsafeString(b), 64)
}

func skipSpace(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i
}

// isNameByte reports whether c may appear in a metric name ([a-zA-Z_:],
// then digits too).
func isNameByte(c byte, notFirst bool) bool {
	return c == ':' || isLabelByte(c, notFirst)
}

// isLabelByte reports whether c may appear in a label name ([a-zA-Z_],
// then digits too).
func isLabelByte(c byte, notFirst bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' ||
		notFirst && c >= '0' && c <= '9'
}

// unsafeString views b as a string without copying; the string must not
// outlive b's next change.
func unsafeString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
