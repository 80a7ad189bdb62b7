//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// client speaks JSON to one HTTP server, optionally with a bearer token.
type client struct {
	t     *testing.T
	base  string
	token string
	basic [2]string // Grafana's basic auth
	orgID int64     // X-Grafana-Org-Id
}

// do sends body as JSON and decodes the answer into out (if not nil).
func (c *client) do(method, path string, body, out any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.basic[0] != "" {
		req.SetBasicAuth(c.basic[0], c.basic[1])
	}
	if c.orgID != 0 {
		req.Header.Set("X-Grafana-Org-Id", strconv.FormatInt(c.orgID, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// must is do that fails the test unless the status is want.
func (c *client) must(want int, method, path string, body, out any) string {
	c.t.Helper()
	code, raw := c.do(method, path, body, out)
	if code != want {
		c.t.Fatalf("%s %s answered %d, want %d: %s", method, path, code, want, raw)
	}
	return raw
}

func (s *scenario) register(tn *tenant) {
	c := &client{t: s.t, base: s.canopy.base}
	pw := "e2e correct horse " + tn.name
	c.must(http.StatusCreated, http.MethodPost, "/api/v1/auth/register",
		map[string]string{"email": tn.email, "password": pw, "name": tn.name}, nil)
	var pair struct{ AccessToken string }
	c.must(http.StatusOK, http.MethodPost, "/api/v1/auth/login",
		map[string]string{"email": tn.email, "password": pw}, &pair)
	c.token = pair.AccessToken
	tn.api = c
}

func (s *scenario) createProjectAndApp(tn *tenant) {
	tn.project = tn.name + "-" + s.backend
	var p struct{ ID, Namespace string }
	tn.api.must(http.StatusCreated, http.MethodPost, "/api/v1/projects",
		map[string]string{"name": tn.project, "description": "e2e " + tn.name}, &p)
	tn.projectID, tn.namespace = p.ID, p.Namespace
	if want := "canopy-" + tn.project; tn.namespace != want {
		s.t.Fatalf("namespace = %q, want %q", tn.namespace, want)
	}
	var a struct{ ID string }
	tn.api.must(http.StatusCreated, http.MethodPost, "/api/v1/projects/"+tn.projectID+"/apps",
		map[string]any{"name": "web", "image": "nginx:1.27", "targetPort": 8080, "replicas": 2}, &a)
	tn.appID = a.ID
}

func (s *scenario) checkWorkloads(tn *tenant) {
	t, ctx := s.t, context.Background()
	eventually(t, 60*time.Second, tn.name+" project ready", func() error {
		var p struct{ Status, Reason string }
		tn.api.must(http.StatusOK, http.MethodGet, "/api/v1/projects/"+tn.projectID, nil, &p)
		if p.Status != "ready" {
			return fmt.Errorf("status %q (%s)", p.Status, p.Reason)
		}
		return nil
	})
	ns, err := s.kube.CoreV1().Namespaces().Get(ctx, tn.namespace, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s: %v", tn.namespace, err)
	}
	if ns.Labels["app.kubernetes.io/managed-by"] != "canopy" ||
		ns.Labels["canopy.dev/project"] != tn.project {
		t.Errorf("namespace %s labels = %v", tn.namespace, ns.Labels)
	}
	eventually(t, 30*time.Second, tn.name+" workloads", func() error {
		d, err := s.kube.AppsV1().Deployments(tn.namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" || *d.Spec.Replicas != 2 {
			return fmt.Errorf("deployment spec differs: %+v", d.Spec)
		}
		svc, err := s.kube.CoreV1().Services(tn.namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p := svc.Spec.Ports[0]; p.Port != 80 || p.TargetPort.IntValue() != 8080 {
			return fmt.Errorf("service port %d → %s", p.Port, p.TargetPort.String())
		}
		quotas, err := s.kube.CoreV1().ResourceQuotas(tn.namespace).List(ctx, metav1.ListOptions{})
		if err != nil || len(quotas.Items) == 0 {
			return fmt.Errorf("no ResourceQuota (err %v)", err)
		}
		return nil
	})
}

type usage struct {
	Namespace string
	HasData   bool
	Total     struct {
		CPUSecondsTotal       float64
		MemoryWorkingSetBytes float64
	}
}

// checkUsage: a tenant's /usage shows its own namespace with data, and the
// other tenant's usage is invisible (404).
func (s *scenario) checkUsage(own, other *tenant) {
	t := s.t
	var u usage
	eventually(t, 60*time.Second, own.name+" usage", func() error {
		u = usage{}
		own.api.must(http.StatusOK, http.MethodGet, "/api/v1/projects/"+own.projectID+"/usage",
			nil, &u)
		if !u.HasData || u.Total.CPUSecondsTotal <= 0 || u.Total.MemoryWorkingSetBytes <= 0 {
			return fmt.Errorf("no figures yet: %+v", u)
		}
		return nil
	})
	if u.Namespace != own.namespace {
		t.Errorf("%s usage is of namespace %q", own.name, u.Namespace)
	}
	s.rep.note(fmt.Sprintf("%s: %s uses %.1f CPU seconds, %.1f MiB working set", s.backend,
		u.Namespace, u.Total.CPUSecondsTotal, u.Total.MemoryWorkingSetBytes/(1<<20)))
	code, _ := own.api.do(http.MethodGet, "/api/v1/projects/"+other.projectID+"/usage", nil, nil)
	if code != http.StatusNotFound {
		t.Errorf("%s reading %s's usage answered %d, want 404", own.name, other.name, code)
	}
}

type promAnswer struct {
	Status string
	Data   struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
}

// checkPrometheus: through its proxy a tenant sees only its namespace, has
// non-zero rates, and cannot name the other's namespace.
func (s *scenario) checkPrometheus(own, other *tenant) {
	t := s.t
	base := "/api/v1/projects/" + own.projectID + "/prometheus/api/v1/query?query="
	eventually(t, 60*time.Second, own.name+" cpu rate through the proxy", func() error {
		var a promAnswer
		q := url.QueryEscape(`sum by (namespace) (rate(canopy_namespace_cpu_usage_seconds_total[10s]))`)
		own.api.must(http.StatusOK, http.MethodGet, base+q, nil, &a)
		if len(a.Data.Result) == 0 {
			return fmt.Errorf("no series yet")
		}
		for _, r := range a.Data.Result {
			if r.Metric["namespace"] != own.namespace {
				t.Fatalf("%s saw namespace %q through its proxy", own.name, r.Metric["namespace"])
			}
			v, _ := strconv.ParseFloat(fmt.Sprint(r.Value[1]), 64)
			if v <= 0 {
				return fmt.Errorf("rate is %v", v)
			}
		}
		return nil
	})

	// Everything, by name, returns only the tenant's own namespace.
	var all promAnswer
	own.api.must(http.StatusOK, http.MethodGet,
		base+url.QueryEscape(`{__name__=~"canopy_.+"}`), nil, &all)
	for _, r := range all.Data.Result {
		if ns, ok := r.Metric["namespace"]; ok && ns != own.namespace {
			t.Fatalf("%s saw %s (namespace %q)", own.name, r.Metric["__name__"], ns)
		}
	}
	q := url.QueryEscape(fmt.Sprintf(`canopy_namespace_memory_working_set_bytes{namespace=%q}`,
		other.namespace))
	if code, _ := own.api.do(http.MethodGet, base+q, nil, nil); code != http.StatusBadRequest {
		t.Errorf("%s asking for %s's namespace answered %d, want 400", own.name, other.name, code)
	}
}

// checkGrafana: one organization per project, holding its dashboards and a
// data source pointing at the project's proxy.
func (s *scenario) checkGrafana(tn *tenant) {
	t := s.t
	admin := &client{t: t, base: s.grafana.URL, basic: [2]string{grafanaUser, grafanaPass}}
	var org struct{ ID int64 }
	eventually(t, 60*time.Second, tn.name+" Grafana organization", func() error {
		code, raw := admin.do(http.MethodGet, "/api/orgs/name/"+tn.project, nil, &org)
		if code != http.StatusOK {
			return fmt.Errorf("org lookup answered %d: %s", code, raw)
		}
		inOrg := &client{t: t, base: s.grafana.URL, basic: admin.basic, orgID: org.ID}
		var found []struct{ UID, Title string }
		inOrg.must(http.StatusOK, http.MethodGet, "/api/search?type=dash-db", nil, &found)
		if len(found) < 2 {
			return fmt.Errorf("%d dashboards in the organization", len(found))
		}
		var sources []struct{ Type, URL string }
		inOrg.must(http.StatusOK, http.MethodGet, "/api/datasources", nil, &sources)
		want := "/api/v1/projects/" + tn.projectID + "/prometheus"
		if len(sources) != 1 || !strings.HasSuffix(sources[0].URL, want) {
			return fmt.Errorf("data sources %+v, want one ending in %s", sources, want)
		}
		return nil
	})
}

func (s *scenario) scale(tn *tenant, replicas int) {
	t, ctx := s.t, context.Background()
	tn.api.must(http.StatusOK, http.MethodPatch,
		"/api/v1/projects/"+tn.projectID+"/apps/"+tn.appID, map[string]int{"replicas": replicas}, nil)
	eventually(t, 30*time.Second, "deployment scaled", func() error {
		d, err := s.kube.AppsV1().Deployments(tn.namespace).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if int(*d.Spec.Replicas) != replicas {
			return fmt.Errorf("replicas %d", *d.Spec.Replicas)
		}
		return nil
	})
}

func (s *scenario) deleteProject(gone, kept *tenant) {
	t, ctx := s.t, context.Background()
	gone.api.must(http.StatusAccepted, http.MethodDelete, "/api/v1/projects/"+gone.projectID,
		nil, nil)
	eventually(t, 90*time.Second, gone.name+" deleted everywhere", func() error {
		_, err := s.kube.CoreV1().Namespaces().Get(ctx, gone.namespace, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("namespace still there (err %v)", err)
		}
		if code, _ := gone.api.do(http.MethodGet, "/api/v1/projects/"+gone.projectID, nil,
			nil); code != http.StatusNotFound {
			return fmt.Errorf("project answers %d", code)
		}
		admin := &client{t: t, base: s.grafana.URL, basic: [2]string{grafanaUser, grafanaPass}}
		if code, _ := admin.do(http.MethodGet, "/api/orgs/name/"+gone.project, nil,
			nil); code != http.StatusNotFound {
			return fmt.Errorf("grafana organization answers %d", code)
		}
		return nil
	})

	// The other project is untouched.
	var p struct{ Status string }
	kept.api.must(http.StatusOK, http.MethodGet, "/api/v1/projects/"+kept.projectID, nil, &p)
	if p.Status != "ready" {
		t.Errorf("%s status %q after %s was deleted", kept.name, p.Status, gone.name)
	}
	if _, err := s.kube.AppsV1().Deployments(kept.namespace).Get(ctx, "web",
		metav1.GetOptions{}); err != nil {
		t.Errorf("%s deployment: %v", kept.name, err)
	}
	s.checkGrafana(kept)
}

func createNamespace(t *testing.T, kube kubernetes.Interface, name string) {
	t.Helper()
	_, err := kube.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// finalizeNamespaces does the namespace controller's last step, which
// envtest lacks: a namespace being deleted loses its finalizer once it is
// empty of the objects Canopy creates.
func finalizeNamespaces(ctx context.Context, kube kubernetes.Interface) {
	for ctx.Err() == nil {
		list, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range list.Items {
				ns := &list.Items[i]
				if ns.DeletionTimestamp == nil || len(ns.Spec.Finalizers) == 0 {
					continue
				}
				deleteContents(ctx, kube, ns.Name)
				ns.Spec.Finalizers = nil
				_, _ = kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func deleteContents(ctx context.Context, kube kubernetes.Interface, ns string) {
	all := metav1.ListOptions{}
	del := metav1.DeleteOptions{}
	_ = kube.AppsV1().Deployments(ns).DeleteCollection(ctx, del, all)
	_ = kube.CoreV1().ResourceQuotas(ns).DeleteCollection(ctx, del, all)
	_ = kube.CoreV1().LimitRanges(ns).DeleteCollection(ctx, del, all)
	_ = kube.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, del, all)
	svcs, err := kube.CoreV1().Services(ns).List(ctx, all)
	if err == nil {
		for _, s := range svcs.Items {
			_ = kube.CoreV1().Services(ns).Delete(ctx, s.Name, del)
		}
	}
}

// eventually retries f until it succeeds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// report collects each step's outcome and time, and prints them at the end.
type report struct {
	mu    sync.Mutex
	lines []string
}

// step starts timing a step; calling the result ends it.
func (r *report) step(t *testing.T, name string) func() {
	start := time.Now()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		status := "ok  "
		if t.Failed() {
			status = "FAIL"
		}
		r.lines = append(r.lines, fmt.Sprintf("%s %7.2fs  %s", status,
			time.Since(start).Seconds(), name))
	}
}

// note adds a line of figures to the report.
func (r *report) note(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, "             "+line)
}

func (r *report) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(w, "\n== canopy end-to-end report")
	for _, l := range r.lines {
		fmt.Fprintln(w, l)
	}
}
