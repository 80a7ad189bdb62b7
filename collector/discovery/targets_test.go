package discovery_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"canopy.dev/canopy/collector/discovery"
	"canopy.dev/canopy/collector/source"
)

const goodTargets = `
targets:
  - node: worker-1
    url: https://10.0.0.5:10250/metrics/cadvisor
    kind: kubelet-cadvisor
    bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
    caFile: /etc/kubelet-ca.crt
  - node: worker-1
    url: https://10.0.0.5:10250/pods
    kind: kubelet-pods
    insecureSkipVerify: true
  - node: edge-host
    url: http://192.0.2.7:8080/metrics
    kind: cadvisor
`

func TestParseTargets(t *testing.T) {
	got, err := discovery.ParseTargets([]byte(goodTargets))
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Target{
		{Node: "worker-1", URL: "https://10.0.0.5:10250/metrics/cadvisor",
			Kind:            source.KubeletCadvisor,
			BearerTokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
			CAFile:          "/etc/kubelet-ca.crt"},
		{Node: "worker-1", URL: "https://10.0.0.5:10250/pods", Kind: source.KubeletPods,
			InsecureSkipVerify: true},
		{Node: "edge-host", URL: "http://192.0.2.7:8080/metrics", Kind: source.Cadvisor},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d targets, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("target %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseTargetsReportsEveryProblem(t *testing.T) {
	file := `
targets:
  - node: ""
    url: https://10.0.0.5:10250/metrics/cadvisor
    kind: kubelet-cadvisor
  - node: worker-2
    url: ftp://10.0.0.6/metrics
    kind: kubelet-metrics
  - node: worker-3
    url: https://10.0.0.7:10250/metrics/cadvisor
    kind: kubelet-cadvisor
    caFile: /ca.crt
    insecureSkipVerify: true
  - node: worker-3
    url: https://10.0.0.7:10250/metrics/cadvisor
    kind: kubelet-cadvisor
  - node: worker-4
    url: http://10.0.0.8:10255/metrics/cadvisor
    kind: kubelet-cadvisor
    insecureSkipVerify: true
  - node: worker-5
    kind: kubelet-summary
  - node: worker-6
    url: http://10.0.0.9:10255/metrics/cadvisor
    kind: kubelet-cadvisor
    bearerTokenFile: /token
`
	got, err := discovery.ParseTargets([]byte(file))
	if !errors.Is(err, discovery.ErrInvalidTargets) {
		t.Fatalf("err %v, want ErrInvalidTargets", err)
	}
	if got != nil {
		t.Errorf("invalid file gave %d targets", len(got))
	}
	for _, want := range []string{
		"targets[0]: node is required",
		`targets[1]: kind "kubelet-metrics" is not one of`,
		`targets[1]: url "ftp://10.0.0.6/metrics": scheme must be http or https`,
		"targets[2]: caFile and insecureSkipVerify contradict",
		`targets[3]: node "worker-3" kind "kubelet-cadvisor" is already listed at targets[2]`,
		"targets[4]: caFile and insecureSkipVerify need an https url",
		`targets[5]: url "": url is required`,
		"targets[6]: bearerTokenFile needs an https url",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestParseTargetsRejectsUnknownFields(t *testing.T) {
	_, err := discovery.ParseTargets([]byte(`
targets:
  - node: w
    url: https://10.0.0.5:10250/metrics/cadvisor
    kind: kubelet-cadvisor
    bearerTokenPath: /token
`))
	if !errors.Is(err, discovery.ErrInvalidTargets) ||
		!strings.Contains(err.Error(), "bearerTokenPath") {
		t.Errorf("err %v, want the misspelt field named", err)
	}
}

func TestLoadTargets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "targets.yaml")
	if err := os.WriteFile(path, []byte(goodTargets), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := discovery.LoadTargets(path)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d targets, err %v", len(got), err)
	}
	if _, err := discovery.LoadTargets(path + ".absent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

func TestMergeStaticWins(t *testing.T) {
	static := []source.Target{
		{Node: "b", URL: "https://override/metrics/cadvisor", Kind: source.KubeletCadvisor},
		{Node: "z", URL: "http://edge/metrics", Kind: source.Cadvisor},
	}
	discovered := []source.Target{
		{Node: "a", URL: "https://a/metrics/cadvisor", Kind: source.KubeletCadvisor},
		{Node: "b", URL: "https://b/metrics/cadvisor", Kind: source.KubeletCadvisor},
		{Node: "b", URL: "https://b/metrics/resource", Kind: source.KubeletResource},
	}
	got := discovery.Merge(static, discovered)
	want := []string{
		"https://a/metrics/cadvisor",
		"https://override/metrics/cadvisor",
		"https://b/metrics/resource",
		"http://edge/metrics",
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].URL != want[i] {
			t.Errorf("target %d: %s, want %s", i, got[i].URL, want[i])
		}
	}
}

func FuzzParseTargets(f *testing.F) {
	f.Add([]byte(goodTargets))
	f.Add([]byte("targets: []\n"))
	f.Add([]byte("targets:\n  - node: a\n    url: http://[::1]:1/x\n    kind: cadvisor\n"))
	f.Add([]byte("targets: {node: 1}"))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		targets, err := discovery.ParseTargets(data)
		if err != nil {
			if !errors.Is(err, discovery.ErrInvalidTargets) || targets != nil {
				t.Fatalf("error %v not ErrInvalidTargets, or targets returned", err)
			}
			return
		}
		// Whatever is accepted is usable: a node, a known kind, a URL, and
		// no endpoint twice.
		seen := map[string]bool{}
		for _, tg := range targets {
			key := tg.Node + "\x00" + string(tg.Kind)
			if tg.Node == "" || !tg.Kind.Valid() || tg.URL == "" || seen[key] {
				t.Fatalf("accepted bad target %+v", tg)
			}
			seen[key] = true
		}
	})
}
