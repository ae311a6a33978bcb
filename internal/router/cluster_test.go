package router

import (
	"context"
	"crypto/x509"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

// startCluster runs three routers over one fake chain, their NATS servers routed to each
// other with one replicated JetStream, as three operators' machines would.
func startCluster(t *testing.T, chain *fakeChain, base Options) ([]*Router, *x509.CertPool) {
	t.Helper()
	const size = 3
	caDir := t.TempDir()
	ports := make([]int, size)
	for i := range ports {
		ports[i] = freePort(t)
	}
	routers := make([]*Router, size)
	var roots *x509.CertPool
	for i := range size {
		dir := caDir
		if i > 0 {
			dir = t.TempDir()
			if err := transport.ShareCA(caDir, dir); err != nil {
				t.Fatal(err)
			}
		}
		files, err := transport.EnsureTLS(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		listener, err := files.ServerConfig()
		if err != nil {
			t.Fatal(err)
		}
		route, err := files.ClusterConfig()
		if err != nil {
			t.Fatal(err)
		}
		if roots, err = files.ClientRootCAs(); err != nil {
			t.Fatal(err)
		}
		var peers []string
		for j, p := range ports {
			if j != i {
				peers = append(peers, "127.0.0.1:"+strconv.Itoa(p))
			}
		}
		opts := base
		if opts.Chain == nil { // else a wrapper of chain's
			opts.Chain = chain
		}
		opts.Key, opts.TLS, opts.StoreDir = newKey(t), listener, t.TempDir()
		opts.Cluster = &transport.ClusterOptions{Name: "routers", Host: "127.0.0.1", Port: ports[i], Routes: peers, TLS: route}
		if routers[i], err = New(opts); err != nil {
			t.Fatal(err)
		}
		chain.params.Routers = append(chain.params.Routers, routers[i].id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, r := range routers {
		wg.Go(func() { errs[i] = r.Start(ctx) })
	}
	wg.Wait()
	for _, r := range routers {
		t.Cleanup(func() { _ = r.Close() })
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return routers, roots
}

// clusterURL is every router's nodes URL: a node dials whichever answers.
func clusterURL(routers []*Router) string {
	urls := make([]string, len(routers))
	for i, r := range routers {
		urls[i] = r.NodesURL()
	}
	return strings.Join(urls, ",")
}

// holders names the routers that run job id now.
func holders(routers []*Router, id string) []keys.Address {
	var out []keys.Address
	for _, r := range routers {
		r.mu.Lock()
		if j := r.jobs[id]; j != nil && j.ctx.Err() == nil {
			out = append(out, r.id)
		}
		r.mu.Unlock()
	}
	return out
}

// A router that dies leaves its jobs to its peers: exactly one of them takes each over,
// from the job's record in the replicated store, and the node hears from it; any router
// answers for any job meanwhile.
func TestClusterTakesOverADeadRoutersJobs(t *testing.T) {
	chain := newFakeChain()
	nodeKey := newKey(t)
	chain.addNode(keys.AddressOfKey(nodeKey), ledger.UomniPerOMNI, 10_000)
	routers, roots := startCluster(t, chain, Options{
		DispatchTimeout: 2 * time.Second, HeartbeatTTL: 2 * time.Second, LeaseTTL: 900 * time.Millisecond,
	})

	// The node dials the cluster and accepts every dispatch, keeping the job: it never
	// reports, and its heartbeats never list it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := transport.Dial(ctx, transport.DialOptions{URL: clusterURL(routers), Key: nodeKey, RootCAs: roots, Name: "test-node"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	dispatches := make(chan protocol.Dispatch, 8)
	nodeID := string(keys.AddressOfKey(nodeKey))
	if _, err := nc.Subscribe(protocol.DispatchSubject(nodeID), func(m *nats.Msg) {
		d, err := protocol.Decode[protocol.Dispatch](m.Data)
		if err != nil {
			t.Error(err)
			return
		}
		dispatches <- d
		_ = m.Respond(protocol.Encode(protocol.Ack{Accepted: true}))
	}); err != nil {
		t.Fatal(err)
	}
	keepBeating(t, nc, nodeKey)
	waitFor(t, "every router hears the node", func() bool {
		for _, r := range routers {
			if len(r.online(protocol.RoleNode)) != 1 {
				return false
			}
		}
		return true
	})

	for _, r := range routers {
		if h := r.Health(); h["lease"] != "held" || h["cluster_peers"] != "2" {
			t.Fatalf("router %s health %v, want its lease held and both peers routed", r.id.Short(), h)
		}
	}
	waitFor(t, "every router's JetStream current", func() bool {
		for _, r := range routers {
			if r.Health()["jetstream"] != "ok" {
				return false
			}
		}
		return true
	})
	first := routers[0]
	id := submit(t, first, chain)
	var d protocol.Dispatch
	select {
	case d = <-dispatches:
	case <-time.After(15 * time.Second):
		t.Fatal("the job was never dispatched")
	}
	if d.JobID != id || d.Router != string(first.id) {
		t.Fatalf("dispatch %s from %s; want %s from the router it was submitted to", d.JobID, d.Router, id)
	}
	if h := holders(routers, id); len(h) != 1 || h[0] != first.id {
		t.Fatalf("job held by %v, want only %s", h, first.id.Short())
	}
	// A peer answers for the job from the shared store.
	waitFor(t, "a peer to show the job running", func() bool { return jobHas(routers[2], id, "running") })

	_ = first.Close() // its lease lapses LeaseTTL after its last renewal
	survivors := routers[1:]
	select {
	case d = <-dispatches:
	case <-time.After(20 * time.Second):
		t.Fatal("no surviving router took the dead router's job over")
	}
	h := holders(survivors, id)
	if len(h) != 1 || d.JobID != id || d.Router != string(h[0]) {
		t.Fatalf("after the takeover the job is held by %v and was dispatched by %s; want exactly one survivor, the dispatcher", h, d.Router)
	}
	owner := routers[1]
	if owner.id != h[0] {
		owner = routers[2]
	}
	if !jobHas(owner, id, "taken_over") {
		t.Fatal("the new owner's record does not say it took the job over")
	}
	entry, err := owner.kv.Get(context.Background(), id)
	if err != nil || ownerOf(entry.Value()) != owner.id {
		t.Fatalf("the stored record names %v as owner (%v), want %s", ownerOf(entry.Value()), err, owner.id.Short())
	}
	// Nobody else dispatches it: the other survivor leaves it alone.
	time.Sleep(3 * 900 * time.Millisecond)
	select {
	case extra := <-dispatches:
		t.Fatalf("job dispatched again by %s after the takeover", extra.Router)
	default:
	}
	if h := holders(survivors, id); len(h) != 1 {
		t.Fatalf("job held by %v after the takeover settled", h)
	}
}
