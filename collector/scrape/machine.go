package scrape

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	cadvisor "github.com/google/cadvisor/client/v2"

	"canopy.dev/canopy/collector/source"
)

// ErrNotCadvisor means machine facts were asked of a target that is not a
// standalone cAdvisor.
var ErrNotCadvisor = errors.New("not a standalone cAdvisor target")

// Machine is what a standalone cAdvisor reports of its host.
type Machine struct {
	Node                string
	Cores               int
	MemoryCapacityBytes uint64
	MachineID           string
	BootID              string
}

// ReadMachine reads the host's machine facts from the REST API
// (/api/v2.1/machine) of the standalone cAdvisor behind t, whose URL is its
// /metrics endpoint.
//
// TODO(collector): cAdvisor's client takes no context and uses
// http.DefaultClient, so a hung cAdvisor keeps one goroutine until the
// connection dies; ReadMachine itself returns at ctx's deadline. Callers
// read machine facts rarely and one target at a time.
func ReadMachine(ctx context.Context, t source.Target) (Machine, error) {
	if t.Kind != source.Cadvisor {
		return Machine{}, fmt.Errorf("read machine node=%q kind=%q: %w",
			t.Node, t.Kind, ErrNotCadvisor)
	}
	base, err := url.Parse(t.URL)
	if err != nil {
		return Machine{}, fmt.Errorf("parse cadvisor url node=%q: %w", t.Node, err)
	}
	root := base.Scheme + "://" + base.Host + "/"
	client, err := cadvisor.NewClient(root)
	if err != nil {
		return Machine{}, fmt.Errorf("create cadvisor client node=%q: %w", t.Node, err)
	}

	type answer struct {
		m   Machine
		err error
	}
	done := make(chan answer, 1)
	go func() {
		info, err := client.MachineInfo()
		if err != nil {
			done <- answer{err: fmt.Errorf("read machine info node=%q: %w", t.Node, err)}
			return
		}
		done <- answer{m: Machine{
			Node: t.Node, Cores: info.NumCores, MemoryCapacityBytes: info.MemoryCapacity,
			MachineID: info.MachineID, BootID: info.BootID,
		}}
	}()
	select {
	case a := <-done:
		return a.m, a.err
	case <-ctx.Done():
		return Machine{}, fmt.Errorf("read machine info node=%q: %w", t.Node, ctx.Err())
	}
}
