// Package buildinfo holds the version and commit stamped into the binary by
// the linker (see the Makefile), and the Go version it was built with.
package buildinfo

import "runtime"

// Version and Commit are set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// GoVersion is the Go release the binary was built with.
func GoVersion() string { return runtime.Version() }
