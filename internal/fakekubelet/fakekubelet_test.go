package fakekubelet

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

const body = `# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="shop",pod="p"} 10 1600000000000
container_memory_working_set_bytes{container="app",namespace="shop",pod="p"} 2048
container_cpu_usage_seconds_total{container="app",namespace="other",pod="q"} 4
`

func get(t *testing.T, k *Kubelet, path, token string) (int, string) {
	t.Helper()
	pem, err := os.ReadFile(k.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, k.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestKubeletServesRenamedAdvancingCounters(t *testing.T) {
	k, err := Start(Options{
		Bodies:     map[string][]byte{"/metrics/cadvisor": []byte(body)},
		Token:      "s3cret",
		Namespaces: map[string]string{"shop": "canopy-shop"},
		Step:       0.5,
	}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()

	if code, _ := get(t, k, "/metrics/cadvisor", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token answered %d, want 401", code)
	}
	_, first := get(t, k, "/metrics/cadvisor", "s3cret")
	_, second := get(t, k, "/metrics/cadvisor", "s3cret")

	if !strings.Contains(first, `namespace="canopy-shop",pod="p"} 10 1600000000000`) {
		t.Errorf("first scrape is not the renamed recording:\n%s", first)
	}
	if !strings.Contains(first, `namespace="other"`) {
		t.Errorf("a namespace outside the map was renamed:\n%s", first)
	}
	// Second scrape: counters grow by half their value, gauges stay.
	if !strings.Contains(second, `pod="p"} 15 1600000000000`) ||
		!strings.Contains(second, `pod="q"} 6`) {
		t.Errorf("counters did not advance by 50%%:\n%s", second)
	}
	if !strings.Contains(second, `container_memory_working_set_bytes{container="app",`+
		`namespace="canopy-shop",pod="p"} 2048`) {
		t.Errorf("gauge changed:\n%s", second)
	}
	if k.Scrapes("/metrics/cadvisor") != 2 {
		t.Errorf("scrapes = %d, want 2", k.Scrapes("/metrics/cadvisor"))
	}
}
