package promproxy_test

import (
	"log"
	"net/http"
	"net/url"

	"canopy.dev/canopy/tenancy"
	"canopy.dev/canopy/tenancy/promproxy"
)

// The API mounts the proxy below a project's path, after its auth layer has
// put the namespace of the caller's project in the request context. The
// prefix may be kept or stripped: the proxy routes on the path's end.
func Example() {
	upstream, err := url.Parse("http://prometheus.monitoring.svc:9090")
	if err != nil {
		log.Fatal(err)
	}
	proxy, err := promproxy.New(upstream, promproxy.Options{})
	if err != nil {
		log.Fatal(err)
	}

	// A stand-in for the API's auth layer, which checks the caller's token
	// and membership of the project, then takes the namespace from the
	// project as stored, never from the request.
	authorize := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ns := "canopy-shop" // the namespace of project r.PathValue("projectId")
			next.ServeHTTP(w, r.WithContext(tenancy.NewContextWithNamespace(r.Context(), ns)))
		})
	}

	mux := http.NewServeMux()
	mux.Handle("/api/v1/projects/{projectId}/prometheus/", authorize(proxy))
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
