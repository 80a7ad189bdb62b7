// Package fakekubelet is a stand-in kubelet for end-to-end runs: an HTTPS
// server that checks a bearer token and serves recorded kubelet outputs
// (/metrics/cadvisor, /metrics/resource, /stats/summary, /pods), with
// namespaces renamed and counters that advance on every scrape so that
// rates are not zero. Kubelets cannot run here; this is the closest honest
// substitute, and it serves the real recorded bytes apart from those edits.
package fakekubelet

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
)

// Options says what one stand-in kubelet serves.
type Options struct {
	// Bodies maps a path (such as /metrics/cadvisor) to the recorded output.
	Bodies map[string][]byte
	// Token is the bearer token every request must carry.
	Token string
	// Namespaces renames namespaces in every body: old name to new name.
	Namespaces map[string]string
	// Step is how much each counter grows per scrape, as a fraction of its
	// recorded value (0.01 = 1%). Zero serves the recording unchanged.
	Step float64
}

// Kubelet is a running stand-in.
type Kubelet struct {
	URL    string // https://127.0.0.1:PORT
	Host   string
	Port   int
	CAFile string // PEM of the server's certificate, for clients to trust

	srv    *httptest.Server
	opts   Options
	mu     sync.Mutex
	scrape map[string]int // path → times served
}

// Start serves opts on a loopback TLS port; dir receives the CA file.
func Start(opts Options, dir string) (*Kubelet, error) {
	bodies := make(map[string][]byte, len(opts.Bodies))
	for path, b := range opts.Bodies {
		bodies[path] = renameNamespaces(b, opts.Namespaces)
	}
	opts.Bodies = bodies

	k := &Kubelet{opts: opts, scrape: map[string]int{}}
	k.srv = httptest.NewTLSServer(http.HandlerFunc(k.serve))
	k.URL = k.srv.URL
	addr := k.srv.Listener.Addr().String()
	host, port, _ := splitHostPort(addr)
	k.Host, k.Port = host, port

	k.CAFile = filepath.Join(dir, fmt.Sprintf("kubelet-%d-ca.pem", port))
	cert := k.srv.Certificate()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(k.CAFile, pemBytes, 0o644); err != nil {
		k.srv.Close()
		return nil, fmt.Errorf("write kubelet CA: %w", err)
	}
	return k, nil
}

// Close stops the server.
func (k *Kubelet) Close() { k.srv.Close() }

// Certificate is the server's certificate.
func (k *Kubelet) Certificate() *x509.Certificate { return k.srv.Certificate() }

// Scrapes returns how often path was served.
func (k *Kubelet) Scrapes(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.scrape[path]
}

func (k *Kubelet) serve(w http.ResponseWriter, r *http.Request) {
	want := "Bearer " + k.opts.Token
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	body, ok := k.opts.Bodies[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}

	k.mu.Lock()
	n := k.scrape[r.URL.Path]
	k.scrape[r.URL.Path] = n + 1
	k.mu.Unlock()

	switch {
	case filepath.Ext(r.URL.Path) == ".json", r.URL.Path == "/stats/summary",
		r.URL.Path == "/pods":
		w.Header().Set("Content-Type", "application/json")
	default:
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		body = advanceCounters(body, float64(n)*k.opts.Step)
	}
	_, _ = w.Write(body)
}

// nsLabel matches a namespace label value in the text format or in JSON.
var nsLabel = regexp.MustCompile(
	`((?:namespace|pod_namespace|container_label_io_kubernetes_pod_namespace)="|"namespace":\s*")` +
		`([a-z0-9-]+)"`)

// renameNamespaces rewrites every namespace label or field by the map.
func renameNamespaces(b []byte, names map[string]string) []byte {
	if len(names) == 0 {
		return b
	}
	return nsLabel.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := nsLabel.FindSubmatch(m)
		if to, ok := names[string(sub[2])]; ok {
			return []byte(string(sub[1]) + to + `"`)
		}
		return m
	})
}

// advanceCounters multiplies the value of every *_total sample by 1+frac, so
// that counters grow between scrapes as on a live node.
func advanceCounters(b []byte, frac float64) []byte {
	if frac == 0 {
		return b
	}
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/20)
	for line := range bytes.Lines(b) {
		out.Write(advanceLine(line, frac))
	}
	return out.Bytes()
}

func advanceLine(line []byte, frac float64) []byte {
	if len(line) == 0 || line[0] == '#' {
		return line
	}
	name := line
	if i := bytes.IndexAny(line, "{ "); i >= 0 {
		name = line[:i]
	}
	if !bytes.HasSuffix(name, []byte("_total")) {
		return line
	}

	// The value follows the closing brace (or the name) and a space; an
	// optional timestamp may follow it.
	rest := line[len(name):]
	if len(rest) > 0 && rest[0] == '{' {
		end := bytes.LastIndexByte(rest, '}')
		if end < 0 {
			return line
		}
		rest = rest[end+1:]
	}
	fields := bytes.Fields(rest)
	if len(fields) == 0 {
		return line
	}
	v, err := strconv.ParseFloat(string(fields[0]), 64)
	if err != nil {
		return line
	}
	head := line[:len(line)-len(rest)]
	out := append([]byte{}, head...)
	out = append(out, ' ')
	out = strconv.AppendFloat(out, v*(1+frac), 'g', -1, 64)
	for _, f := range fields[1:] {
		out = append(out, ' ')
		out = append(out, f...)
	}
	return append(out, '\n')
}

func splitHostPort(addr string) (string, int, error) {
	i := bytes.LastIndexByte([]byte(addr), ':')
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", addr)
	}
	p, err := strconv.Atoi(addr[i+1:])
	return addr[:i], p, err
}
