package testenv

import (
	"sync"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// APIServer is one real kube-apiserver and etcd, started by envtest on first
// use and shared by a test package: each start costs seconds. Declare one as
// a package variable and call Stop from TestMain after m.Run.
type APIServer struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

// Config starts the server if it is not running and returns a client
// configuration for it. Without the binaries the test skips (fails in CI).
func (s *APIServer) Config(t testing.TB) *rest.Config {
	t.Helper()
	dir := KubeAssets(t)
	s.once.Do(func() {
		s.env = &envtest.Environment{BinaryAssetsDirectory: dir}
		s.cfg, s.err = s.env.Start()
	})
	if s.err != nil {
		t.Fatalf("start kube-apiserver: %v", s.err)
	}
	return s.cfg
}

// Stop stops the server if it was started.
func (s *APIServer) Stop() {
	if s.env != nil && s.cfg != nil {
		_ = s.env.Stop()
	}
}

// AddUser creates a user with no RBAC rights on the running server and
// returns a client configuration that authenticates as it.
func (s *APIServer) AddUser(t testing.TB, name string) *rest.Config {
	t.Helper()
	cfg := s.Config(t)
	u, err := s.env.AddUser(envtest.User{Name: name}, cfg)
	if err != nil {
		t.Fatalf("add user %s: %v", name, err)
	}
	return u.Config()
}
