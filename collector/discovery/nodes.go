package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"canopy.dev/canopy/collector/source"
)

// Access says how the collector reaches a discovered kubelet.
type Access string

// Access modes, as CANOPY_KUBELET_ACCESS names them.
const (
	// Direct scrapes https://ADDRESS:PORT of the node with the service
	// account's token; it needs get on nodes/metrics, nodes/stats and, for
	// /pods, nodes/proxy.
	Direct Access = "direct"
	// Proxy goes through the API server's node proxy
	// (/api/v1/nodes/NAME/proxy/...); it needs get on nodes/proxy.
	Proxy Access = "proxy"
)

// ErrInvalidAccess means an access mode is neither direct nor proxy.
var ErrInvalidAccess = errors.New("invalid kubelet access mode")

// Validate checks that a is a known mode.
func (a Access) Validate() error {
	if a != Direct && a != Proxy {
		return fmt.Errorf("check access %q (want direct or proxy): %w", a, ErrInvalidAccess)
	}
	return nil
}

// DefaultKubeletPort is used when a Node does not publish its kubelet port.
const DefaultKubeletPort = 10250

// addressPreference is the order in which a Node's addresses are tried, the
// same order the API server's own kubelet client uses by default.
var addressPreference = []corev1.NodeAddressType{
	corev1.NodeInternalIP,
	corev1.NodeHostName,
	corev1.NodeExternalIP,
	corev1.NodeInternalDNS,
	corev1.NodeExternalDNS,
}

// kubeletPaths maps each kubelet endpoint kind to its path.
var kubeletPaths = map[source.Kind]string{
	source.KubeletCadvisor: "/metrics/cadvisor",
	source.KubeletResource: "/metrics/resource",
	source.KubeletSummary:  "/stats/summary",
	source.KubeletPods:     "/pods",
}

// NodeOptions say how discovered nodes become targets.
type NodeOptions struct {
	Logger *slog.Logger
	Access Access
	// APIServer is the API server's base URL (rest.Config.Host); Proxy only.
	APIServer string
	// Pods adds a kubelet-pods target per node, for when no Pod informer runs.
	Pods bool
	// TokenFile, CAFile and InsecureSkipVerify are set on Direct targets.
	TokenFile          string
	CAFile             string
	InsecureSkipVerify bool
	Shard              Shard
}

// Nodes turns the Nodes of a Node informer into kubelet targets.
type Nodes struct {
	lister corelisters.NodeLister
	synced cache.InformerSynced
	opts   NodeOptions

	mu        sync.Mutex
	noAddress map[string]bool // nodes already logged as unreachable
}

// NewNodes registers a Node informer on factory (start the factory after) and
// returns the node source. The informer keeps only the fields discovery
// reads, so a large cluster's node images and conditions cost no memory.
func NewNodes(factory informers.SharedInformerFactory, opts NodeOptions) (*Nodes, error) {
	if err := opts.Access.Validate(); err != nil {
		return nil, fmt.Errorf("create node discovery: %w", err)
	}
	if err := opts.Shard.Validate(); err != nil {
		return nil, fmt.Errorf("create node discovery: %w", err)
	}
	if opts.Access == Proxy && opts.APIServer == "" {
		return nil, fmt.Errorf("create node discovery: proxy access needs the API server URL: %w",
			ErrInvalidAccess)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	informer := factory.Core().V1().Nodes()
	if err := informer.Informer().SetTransform(trimNode); err != nil {
		return nil, fmt.Errorf("set node transform: %w", err)
	}
	return &Nodes{
		lister:    informer.Lister(),
		synced:    informer.Informer().HasSynced,
		opts:      opts,
		noAddress: make(map[string]bool),
	}, nil
}

// HasSynced reports whether the informer has listed the nodes once.
func (n *Nodes) HasSynced() bool { return n.synced() }

// Targets returns the targets of every node this shard owns, sorted by node.
func (n *Nodes) Targets() ([]source.Target, error) {
	nodes, err := n.lister.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})

	var targets []source.Target
	for _, node := range nodes {
		if !n.opts.Shard.Owns(node.Name) {
			continue
		}
		ts, err := NodeTargets(node, n.opts)
		n.noteAddress(node.Name, err)
		targets = append(targets, ts...)
	}
	return targets, nil
}

// noteAddress logs a node without a usable address once, and its recovery.
func (n *Nodes) noteAddress(node string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case err != nil && !n.noAddress[node]:
		n.noAddress[node] = true
		n.opts.Logger.Warn("node has no usable kubelet address", "node", node, "error", err)
	case err == nil && n.noAddress[node]:
		delete(n.noAddress, node)
		n.opts.Logger.Info("node has a kubelet address again", "node", node)
	}
}

// ErrNoAddress means a Node publishes no address discovery can use.
var ErrNoAddress = errors.New("node has no address")

// NodeTargets returns one target per kubelet endpoint of node: cadvisor,
// resource and summary, plus pods when opts.Pods is set.
func NodeTargets(node *corev1.Node, opts NodeOptions) ([]source.Target, error) {
	base, err := kubeletBase(node, opts)
	if err != nil {
		return nil, err
	}

	kinds := []source.Kind{source.KubeletCadvisor, source.KubeletResource, source.KubeletSummary}
	if opts.Pods {
		kinds = append(kinds, source.KubeletPods)
	}
	targets := make([]source.Target, 0, len(kinds))
	for _, kind := range kinds {
		t := source.Target{Node: node.Name, URL: base + kubeletPaths[kind], Kind: kind}
		if opts.Access == Direct {
			t.BearerTokenFile = opts.TokenFile
			t.CAFile = opts.CAFile
			t.InsecureSkipVerify = opts.InsecureSkipVerify
		}
		targets = append(targets, t)
	}
	return targets, nil
}

// kubeletBase is the URL that the endpoint paths are appended to.
func kubeletBase(node *corev1.Node, opts NodeOptions) (string, error) {
	if opts.Access == Proxy {
		base, err := url.JoinPath(opts.APIServer, "api", "v1", "nodes", node.Name, "proxy")
		if err != nil {
			return "", fmt.Errorf("build proxy url node=%q: %w", node.Name, err)
		}
		return base, nil
	}

	addr, ok := NodeAddress(node)
	if !ok {
		return "", fmt.Errorf("find kubelet address node=%q: %w", node.Name, ErrNoAddress)
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	return "https://" + net.JoinHostPort(addr, strconv.Itoa(port)), nil
}

// NodeAddress returns the node's address of the most preferred type
// (InternalIP, Hostname, ExternalIP, InternalDNS, ExternalDNS), the first
// listed of that type.
func NodeAddress(node *corev1.Node) (string, bool) {
	for _, want := range addressPreference {
		for _, a := range node.Status.Addresses {
			if a.Type == want && a.Address != "" {
				return a.Address, true
			}
		}
	}
	return "", false
}

// trimNode keeps only what NodeTargets reads.
func trimNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a tombstone: pass it through
	}
	return &corev1.Node{
		TypeMeta:   node.TypeMeta,
		ObjectMeta: metaTrim(node.ObjectMeta),
		Status: corev1.NodeStatus{
			Addresses:       node.Status.Addresses,
			DaemonEndpoints: node.Status.DaemonEndpoints,
		},
	}, nil
}
