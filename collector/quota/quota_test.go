package quota_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"canopy.dev/canopy/collector/quota"
	"canopy.dev/canopy/internal/testenv"
)

// One kube-apiserver for the package: it takes seconds to start.
var api testenv.APIServer

func TestMain(m *testing.M) {
	code := m.Run()
	api.Stop()
	os.Exit(code)
}

// apiServer returns a client of the package's real API server.
func apiServer(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(api.Config(t))
}

// Metric names, spelled out here so that a renamed family fails the test.
const (
	cpuRequests = "canopy_namespace_quota_cpu_requests_cores"
	cpuLimits   = "canopy_namespace_quota_cpu_limits_cores"
	memRequests = "canopy_namespace_quota_memory_requests_bytes"
	memLimits   = "canopy_namespace_quota_memory_limits_bytes"
	pods        = "canopy_namespace_quota_pods"
)

const (
	gib = 1 << 30
	mib = 1 << 20
)

// quiet drops the collector's logs.
var quiet = slog.New(slog.DiscardHandler)

var (
	managed   = map[string]string{"app.kubernetes.io/managed-by": "canopy"}
	unmanaged = map[string]string{"app.kubernetes.io/managed-by": "helm"}
)

// series names one series: a metric of a namespace's project.
func series(name, ns, project string) string {
	return fmt.Sprintf("%s{namespace=%q,project=%q}", name, ns, project)
}

func TestCollectorFollowsCanopyQuotas(t *testing.T) {
	cs := apiServer(t)
	ctx := t.Context()
	for _, ns := range []string{"canopy-shop", "canopy-blog", "team-x"} {
		createNamespace(t, cs, ns)
	}

	// shop: Canopy's quota, and a tighter one by hand that must not count.
	createQuota(t, cs, "canopy-shop", "canopy", managed, corev1.ResourceList{
		"requests.cpu": q("1500m"), "limits.cpu": q("3"),
		"requests.memory": q("2Gi"), "limits.memory": q("4Gi"), "pods": q("20"),
	})
	createQuota(t, cs, "canopy-shop", "by-hand", unmanaged, corev1.ResourceList{
		"requests.cpu": q("100m"), "limits.cpu": q("200m"), "pods": q("2"),
	})
	// blog: two Canopy quotas, the short names "cpu" and "memory", no limits.
	createQuota(t, cs, "canopy-blog", "canopy", managed, corev1.ResourceList{
		"cpu": q("500m"), "memory": q("512Mi"), "pods": q("10"),
	})
	createQuota(t, cs, "canopy-blog", "canopy-burst", managed, corev1.ResourceList{
		"requests.cpu": q("750m"), "count/pods": q("4"),
	})
	// team-x: outside the prefix, so its project is the whole name.
	createQuota(t, cs, "team-x", "canopy", managed, corev1.ResourceList{"pods": q("3")})

	c := quota.New(cs, quota.Options{Logger: quiet})
	runCollector(t, c)

	// No quota controller runs beside envtest's API server, so status.hard
	// stays empty and spec.hard is read.
	want := map[string]float64{
		series(cpuRequests, "canopy-shop", "shop"): 1.5,
		series(cpuLimits, "canopy-shop", "shop"):   3,
		series(memRequests, "canopy-shop", "shop"): 2 * gib,
		series(memLimits, "canopy-shop", "shop"):   4 * gib,
		series(pods, "canopy-shop", "shop"):        20,
		// The tighter of the two quotas: each is enforced on its own.
		series(cpuRequests, "canopy-blog", "blog"): 0.5,
		series(memRequests, "canopy-blog", "blog"): 512 * mib,
		series(pods, "canopy-blog", "blog"):        4,
		series(pods, "team-x", "team-x"):           3,
	}
	waitFor(t, c, want)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Errorf("lint metrics: %v %v", problems, err)
	}

	// A changed spec shows on the next scrape.
	blog, err := cs.CoreV1().ResourceQuotas("canopy-blog").Get(ctx, "canopy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get quota: %v", err)
	}
	blog.Spec.Hard["memory"] = q("1Gi")
	if _, err := cs.CoreV1().ResourceQuotas("canopy-blog").Update(ctx, blog,
		metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update quota: %v", err)
	}
	want[series(memRequests, "canopy-blog", "blog")] = 1 * gib
	waitFor(t, c, want)

	// Once the quota controller has written status.hard, it is what counts.
	shop, err := cs.CoreV1().ResourceQuotas("canopy-shop").Get(ctx, "canopy", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get quota: %v", err)
	}
	shop.Status.Hard = shop.Spec.DeepCopy().Hard
	shop.Status.Hard["pods"] = q("15")
	if _, err := cs.CoreV1().ResourceQuotas("canopy-shop").UpdateStatus(ctx, shop,
		metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update quota status: %v", err)
	}
	want[series(pods, "canopy-shop", "shop")] = 15
	waitFor(t, c, want)

	// Deleting a namespace's quotas deletes its series.
	for _, name := range []string{"canopy", "canopy-burst"} {
		if err := cs.CoreV1().ResourceQuotas("canopy-blog").Delete(ctx, name,
			metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete quota: %v", err)
		}
	}
	maps.DeleteFunc(want, func(k string, _ float64) bool {
		return strings.Contains(k, `namespace="canopy-blog"`)
	})
	waitFor(t, c, want)
	if n := testutil.CollectAndCount(c); n != len(want) {
		t.Errorf("collected %d series, want %d", n, len(want))
	}
}

func TestCollectorHonoursPrefix(t *testing.T) {
	cs := apiServer(t)
	createNamespace(t, cs, "tenant-docs")
	createQuota(t, cs, "tenant-docs", "canopy", managed, corev1.ResourceList{
		"limits.cpu": q("2500m"),
	})

	c := quota.New(cs, quota.Options{NamespacePrefix: "tenant-", Logger: quiet})
	runCollector(t, c)
	got := waitUntil(t, c, "a tenant-docs series", func(m map[string]float64) bool {
		_, ok := m[series(cpuLimits, "tenant-docs", "docs")]
		return ok
	})
	if v := got[series(cpuLimits, "tenant-docs", "docs")]; v != 2.5 {
		t.Errorf("cpu limits of tenant-docs = %v, want 2.5", v)
	}
}

func TestMetricNamesMatchDescs(t *testing.T) {
	ch := make(chan *prometheus.Desc, 16)
	quota.New(nil, quota.Options{}).Describe(ch)
	close(ch)
	var described []string
	for d := range ch {
		// Desc has no name getter; its String() holds fqName: "NAME".
		s := d.String()
		start := strings.Index(s, `fqName: "`) + len(`fqName: "`)
		described = append(described, s[start:start+strings.Index(s[start:], `"`)])
	}
	slices.Sort(described)
	want := []string{cpuLimits, cpuRequests, memLimits, memRequests, pods}
	if got := quota.MetricNames(); !slices.Equal(got, want) {
		t.Errorf("MetricNames() = %v, want %v", got, want)
	}
	if !slices.Equal(described, want) {
		t.Errorf("Describe sends %v, want %v", described, want)
	}
}

// q parses a quantity written in the test.
func q(s string) resource.Quantity { return resource.MustParse(s) }

func createNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns,
		metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func createQuota(t *testing.T, cs kubernetes.Interface, ns, name string,
	labels map[string]string, hard corev1.ResourceList) {
	t.Helper()
	rq := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}
	if _, err := cs.CoreV1().ResourceQuotas(ns).Create(context.Background(), rq,
		metav1.CreateOptions{}); err != nil {
		t.Fatalf("create quota %s/%s: %v", ns, name, err)
	}
}

// runCollector runs c until the test ends and waits for its first list.
func runCollector(t *testing.T, c *quota.Collector) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run quota collector: %v", err)
		}
	})
	synced := func(map[string]float64) bool { return c.HasSynced() }
	waitUntil(t, c, "a synced informer", synced)
}

// waitFor waits until c's series are exactly want.
func waitFor(t *testing.T, c *quota.Collector, want map[string]float64) {
	t.Helper()
	waitUntil(t, c, "series:\n"+format(want),
		func(got map[string]float64) bool { return maps.Equal(got, want) })
}

// waitUntil gathers c until ok holds, as the informer catches up with the
// API server, and returns the last series it gathered; want says what ok
// waits for.
func waitUntil(t *testing.T, c *quota.Collector, want string,
	ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := gather(t, reg)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %s\nlast gathered:\n%s", want, format(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gather returns every series of reg as name{labels} to value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var ns, project string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "namespace":
					ns = l.GetValue()
				case "project":
					project = l.GetValue()
				}
			}
			out[series(f.GetName(), ns, project)] = m.GetGauge().GetValue()
		}
	}
	return out
}

func format(m map[string]float64) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "  %s %v\n", k, m[k])
	}
	return b.String()
}
