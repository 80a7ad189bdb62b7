//go:build tools

// Package etcd pins the etcd that envtest starts in tests.
// It is built by scripts/testbin.sh and never imported.
package etcd

import _ "go.etcd.io/etcd/server/v3"
