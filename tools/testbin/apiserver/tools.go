//go:build tools

// Package apiserver pins the kube-apiserver that envtest starts in tests.
// It is built by scripts/testbin.sh and never imported.
package apiserver

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
