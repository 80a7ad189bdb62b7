package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeConfig finds the cluster to manage: the --kubeconfig file, else the
// in-cluster service account, else ~/.kube/config, else none (nil, nil).
func kubeConfig(path string) (*rest.Config, string, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, "", fmt.Errorf("load kubeconfig path=%q: %w", path, err)
		}
		return cfg, path, nil
	}

	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, "in-cluster", nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, "", fmt.Errorf("load in-cluster config: %w", err)
	}

	home, err := os.UserHomeDir()
	if err != nil {
		return nil, "", nil
	}
	def := filepath.Join(home, ".kube", "config")
	if _, err := os.Stat(def); err != nil {
		return nil, "", nil
	}
	cfg, err = clientcmd.BuildConfigFromFlags("", def)
	if err != nil {
		return nil, "", fmt.Errorf("load kubeconfig path=%q: %w", def, err)
	}
	return cfg, def, nil
}
