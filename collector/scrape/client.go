package scrape

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"canopy.dev/canopy/collector/source"
)

// ErrCA means a CA file could not be read or holds no certificate.
var ErrCA = errors.New("invalid CA file")

// tlsKey identifies the TLS settings targets can share a client for.
type tlsKey struct {
	caFile   string
	insecure bool
}

// tlsClient is a client and the version of the CA file it trusts.
type tlsClient struct {
	client *http.Client
	caMod  time.Time
	caSize int64
}

// clientFor returns the client to reach t with: the API server's for
// node-proxy targets, else one per CA file and insecure flag, rebuilt when
// the CA file changes (a rotated cluster CA is picked up without restart).
func (s *Scraper) clientFor(t source.Target) (*http.Client, error) {
	if s.viaAPIServer(t) {
		return s.api, nil
	}
	key := tlsKey{caFile: t.CAFile, insecure: t.InsecureSkipVerify}
	if !strings.HasPrefix(t.URL, "https://") {
		key = tlsKey{} // plain http: TLS settings do not matter
	}

	var mod time.Time
	var size int64
	if key.caFile != "" {
		fi, err := os.Stat(key.caFile)
		if err != nil {
			return nil, fmt.Errorf("stat CA file path=%q: %w: %w", key.caFile, ErrCA, err)
		}
		mod, size = fi.ModTime(), fi.Size()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.clients[key]; c != nil && c.caMod.Equal(mod) && c.caSize == size {
		return c.client, nil
	}
	tc, err := newTLSConfig(key)
	if err != nil {
		return nil, err
	}
	if old := s.clients[key]; old != nil {
		old.client.CloseIdleConnections()
	}
	c := &tlsClient{client: &http.Client{Transport: newTransport(tc)}, caMod: mod, caSize: size}
	s.clients[key] = c
	return c.client, nil
}

// newTLSConfig trusts the CA file, the system roots, or anything when
// insecure is set explicitly.
func newTLSConfig(key tlsKey) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: key.insecure}
	if key.caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(key.caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file path=%q: %w: %w", key.caFile, ErrCA, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("load CA file path=%q: no PEM certificate: %w", key.caFile, ErrCA)
	}
	tc.RootCAs = pool
	return tc, nil
}

// newTransport keeps connections to every kubelet open between cycles:
// a handshake per node per cycle would cost more than the scrape.
func newTransport(tc *tls.Config) *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConns:        0, // no overall limit: one idle connection per node is the point
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     2 * time.Minute,
	}
}
