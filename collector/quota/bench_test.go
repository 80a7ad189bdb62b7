package quota

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// BenchmarkCollect measures one scrape of 1,000 namespaces' quotas, as the
// informer's cache holds them.
func BenchmarkCollect(b *testing.B) {
	const namespaces = 1000
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := range namespaces {
		rq := &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{
				Name: "canopy", Namespace: fmt.Sprintf("canopy-p%d", i),
				Labels: map[string]string{"app.kubernetes.io/managed-by": "canopy"},
			},
			Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{
				"requests.cpu": resource.MustParse("2"), "limits.cpu": resource.MustParse("4"),
				"requests.memory": resource.MustParse("4Gi"),
				"limits.memory":   resource.MustParse("8Gi"), "pods": resource.MustParse("50"),
			}},
		}
		if err := indexer.Add(rq); err != nil {
			b.Fatal(err)
		}
	}
	c := newCollector(corelisters.NewResourceQuotaLister(indexer), Options{})
	ch := make(chan prometheus.Metric, 1024)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		done <- n
	}()

	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
	}
	close(ch)
	if n := <-done; n != b.N*namespaces*len(families) {
		b.Fatalf("collected %d series, want %d", n, b.N*namespaces*len(families))
	}
}
