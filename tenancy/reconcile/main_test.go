package reconcile_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"canopy.dev/canopy/internal/testenv"
	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/reconcile"
	"canopy.dev/canopy/tenancy/sqlstore"
)

// One API server for the whole package: each start costs seconds. Tests
// share it and keep apart by using project names of their own.
var api testenv.APIServer

func TestMain(m *testing.M) {
	code := m.Run()
	api.Stop()
	os.Exit(code)
}

// cluster returns a copy of the shared API server's config, or skips the
// test (fails it in CI) when the envtest binaries are missing.
func cluster(t testing.TB) *rest.Config {
	t.Helper()
	return rest.CopyConfig(api.Config(t))
}

// writeCounter counts the writes a client makes, leaving out Leases (the
// election's own bookkeeping), and calls onWrite after each.
type writeCounter struct {
	n       atomic.Int64
	onWrite func(n int64)
}

func (c *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		lease := strings.Contains(req.URL.Path, "/leases")
		if err == nil && req.Method != http.MethodGet && !lease {
			n := c.n.Add(1)
			if c.onWrite != nil {
				c.onWrite(n)
			}
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// client builds a clientset on cfg that counts its writes in c (if not nil).
func client(t testing.TB, cfg *rest.Config, c *writeCounter) kubernetes.Interface {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	if c != nil {
		cfg.WrapTransport = c.wrap
	}
	cfg.QPS, cfg.Burst = 200, 400
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("create clientset: %v", err)
	}
	return cs
}

// fixture is one test's store, with a user who owns its projects.
type fixture struct {
	store *sqlstore.Store
	owner string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "canopy.db")
	st, err := sqlstore.Open(ctx, url, quietLogger())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate store: %v", err)
	}
	u := &tenancy.User{Email: "owner@example.com", Name: "Owner", PasswordHash: "x"}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return &fixture{store: st, owner: u.ID}
}

// runs numbers the projects this process makes, so that names stay unique on
// the shared API server across tests and across -count runs.
var runs atomic.Int64

// project stores a project named base plus a unique suffix.
func (f *fixture) project(t testing.TB, base string) *tenancy.Project {
	t.Helper()
	name := fmt.Sprintf("%s-%d", base, runs.Add(1))
	p := &tenancy.Project{Name: name, Namespace: "canopy-" + name, OwnerID: f.owner}
	if err := f.store.CreateProject(context.Background(), p); err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return p
}

func (f *fixture) app(t testing.TB, p *tenancy.Project, a tenancy.App) *tenancy.App {
	t.Helper()
	a.ProjectID = p.ID
	if err := f.store.CreateApp(context.Background(), &a); err != nil {
		t.Fatalf("create app %s: %v", a.Name, err)
	}
	return &a
}

func (f *fixture) getProject(t *testing.T, id string) *tenancy.Project {
	t.Helper()
	p, err := f.store.ProjectByID(context.Background(), id)
	if err != nil {
		t.Fatalf("load project: %v", err)
	}
	return p
}

func (f *fixture) getApp(t *testing.T, a *tenancy.App) *tenancy.App {
	t.Helper()
	got, err := f.store.AppByID(context.Background(), a.ProjectID, a.ID)
	if err != nil {
		t.Fatalf("load app: %v", err)
	}
	return got
}

// config is a reconciler configuration fast enough for tests.
func (f *fixture) config(cs kubernetes.Interface) reconcile.Config {
	return withTestSettings(reconcile.Config{
		Store:          f.store,
		Client:         cs,
		Logger:         quietLogger(),
		ResyncInterval: 300 * time.Millisecond,
		RetryBaseDelay: 50 * time.Millisecond,
		RetryMaxDelay:  500 * time.Millisecond,
		SyncTimeout:    500 * time.Millisecond,
	})
}

// start runs a reconciler until the returned stop is called (or the test
// ends); stop waits for Run to return.
func start(t *testing.T, cfg reconcile.Config) (*reconcile.Reconciler, func()) {
	t.Helper()
	r, err := reconcile.New(cfg)
	if err != nil {
		t.Fatalf("create reconciler: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.Run(ctx); err != nil {
			t.Errorf("run reconciler: %v", err)
		}
	}()
	stop := func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return r, stop
}

// eventually polls check until it returns nil, failing the test with the
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// projectStatus waits for the project to reach status.
func (f *fixture) waitStatus(t *testing.T, id string, status tenancy.Status) *tenancy.Project {
	t.Helper()
	var p *tenancy.Project
	eventually(t, 20*time.Second, func() error {
		var err error
		p, err = f.store.ProjectByID(context.Background(), id)
		if err != nil {
			return err
		}
		if p.Status != status {
			return fmt.Errorf("project %s is %s (%s), want %s", p.Name, p.Status, p.Reason, status)
		}
		return nil
	})
	return p
}

// waitGone waits until the store no longer has the project.
func (f *fixture) waitGone(t *testing.T, id string) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		_, err := f.store.ProjectByID(context.Background(), id)
		if errors.Is(err, tenancy.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("project still stored (err %v)", err)
	})
}

// finalizeNamespace plays the namespace controller, which envtest lacks: once
// the namespace is terminating, it drops the kubernetes finalizer so that the
// API server removes the namespace.
func finalizeNamespace(t *testing.T, cs kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 20*time.Second, func() error {
		ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if ns.DeletionTimestamp == nil {
			return fmt.Errorf("namespace %s is not terminating", name)
		}
		ns.Spec.Finalizers = nil
		_, err = cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{})
		return err
	})
}

// metricSum adds up every series of one metric in reg.
func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		opts := &slog.HandlerOptions{Level: slog.LevelDebug}
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
