// Package deploy holds the Kubernetes manifests that run Canopy on a cluster:
// a kustomize base (namespace, service account, least-privilege RBAC,
// Deployment, Service, ServiceMonitor, Grafana's JWT sign-in settings), the
// dev and prod overlays, and the kubelet-proxy component. Its only Go code is
// the test that renders every overlay and applies it to a real API server.
package deploy
