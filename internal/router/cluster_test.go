package router

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

const (
	// clusterAttempts bounds the clusters startCluster starts before it gives up.
	clusterAttempts = 3
	// clusterAttemptTimeout bounds one attempt; a router whose server cannot bind its
	// route port fails at once, and the others, waiting for it, when told so.
	clusterAttemptTimeout = 60 * time.Second
)

// startCluster runs three routers over one fake chain, their NATS servers routed to each
// other with one replicated JetStream, as three operators' machines would. Their route
// ports are picked before the servers bind them, as each must name the others', so
// another process may take one in between: then that router fails to start, the
// attempt's routers are closed, and three new ones, with the same keys, start on fresh
// ports and stores.
func startCluster(t *testing.T, chain *fakeChain, base Options) ([]*Router, *x509.CertPool) {
	t.Helper()
	const size = 3
	caDir := t.TempDir()
	routerKeys := make([]ed25519.PrivateKey, size)
	listeners, routes := make([]*tls.Config, size), make([]*tls.Config, size)
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
		if listeners[i], err = files.ServerConfig(); err != nil {
			t.Fatal(err)
		}
		if routes[i], err = files.ClusterConfig(); err != nil {
			t.Fatal(err)
		}
		if roots, err = files.ClientRootCAs(); err != nil {
			t.Fatal(err)
		}
		routerKeys[i] = newKey(t)
		chain.params.Routers = append(chain.params.Routers, keys.AddressOfKey(routerKeys[i]))
	}
	for attempt := 1; ; attempt++ {
		routers, err := startRouters(t, chain, base, routerKeys, listeners, routes)
		if err == nil {
			return routers, roots
		}
		if attempt == clusterAttempts {
			t.Fatalf("no cluster formed in %d attempts; the last: %v", attempt, err)
		}
		t.Logf("cluster attempt %d failed, starting another on fresh ports: %v", attempt, err)
	}
}

// startRouters starts one router per key, with its TLS configs, on fresh route ports and
// stores. If any fails to start, it closes them all and returns why.
func startRouters(t *testing.T, chain *fakeChain, base Options, routerKeys []ed25519.PrivateKey, listeners, routes []*tls.Config) ([]*Router, error) {
	t.Helper()
	ports := freePorts(t, len(routerKeys))
	routers := make([]*Router, len(routerKeys))
	for i, k := range routerKeys {
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
		opts.Key, opts.TLS, opts.StoreDir = k, listeners[i], t.TempDir()
		opts.Cluster = &transport.ClusterOptions{Name: "routers", Host: "127.0.0.1", Port: ports[i], Routes: peers, TLS: routes[i]}
		var err error
		if routers[i], err = New(opts); err != nil {
			t.Fatal(err)
		}
	}
	// Routers of a cluster start together: each waits for the others to form it, in vain
	// once one has failed.
	ctx, cancel := context.WithTimeout(context.Background(), clusterAttemptTimeout)
	defer cancel()
	errs := make([]error, len(routers))
	var wg sync.WaitGroup
	for i, r := range routers {
		wg.Go(func() {
			if errs[i] = r.Start(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, r := range routers {
			_ = r.Close()
		}
		return nil, err
	}
	for _, r := range routers {
		t.Cleanup(func() { _ = r.Close() })
	}
	return routers, nil
}

// freePorts returns n distinct ports that were free a moment ago: each listener stays
// open until all are picked, so the kernel cannot hand out one port twice.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
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
	// The node's heartbeats never list the job, which the router watching it takes to mean
	// the node dropped it, at its first look, HeartbeatTTL/2 after the dispatch: that must
	// come after the test has closed the first router, and after it has checked on the
	// survivor that took the job over, however slowly the test runs. The lease outlasts a
	// JetStream leader election, as DefaultLeaseTTL must: at 0.9 s, an election of the
	// leases' stream leader under -race in CI lapsed the first router's lease while it
	// ran, and a survivor took its job over before the test closed it.
	const lease = 6 * time.Second
	routers, roots := startCluster(t, chain, Options{
		DispatchTimeout: 2 * time.Second, HeartbeatTTL: 30 * time.Second, LeaseTTL: lease,
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
	case <-time.After(lease + 20*time.Second):
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
	// Nobody else dispatches it: the other survivor leaves it alone, three lease renewals
	// and scans later.
	time.Sleep(lease)
	select {
	case extra := <-dispatches:
		t.Fatalf("job dispatched again by %s after the takeover", extra.Router)
	default:
	}
	if h := holders(survivors, id); len(h) != 1 {
		t.Fatalf("job held by %v after the takeover settled", h)
	}
}

// leaseStore is a lease bucket whose reads of some keys fail: listed keys, each read
// answered by its entry, or by err[key] where one is set.
type leaseStore struct {
	jetstream.KeyValue // any other call panics
	leases             map[string]lease
	err                map[string]error
}

func (s leaseStore) ListKeys(context.Context, ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	ch := make(chan string, len(s.leases)+len(s.err))
	for k := range s.leases {
		ch <- k
	}
	for k := range s.err {
		ch <- k
	}
	close(ch)
	return keyList(ch), nil
}

func (s leaseStore) Get(_ context.Context, key string) (jetstream.KeyValueEntry, error) {
	if err := s.err[key]; err != nil {
		return nil, err
	}
	b, _ := json.Marshal(s.leases[key])
	return leaseEntry{value: b}, nil
}

type keyList <-chan string

func (l keyList) Keys() <-chan string { return l }
func (keyList) Stop() error           { return nil }

type leaseEntry struct {
	jetstream.KeyValueEntry
	value []byte
}

func (e leaseEntry) Value() []byte { return e.value }

// jobStoreUnread is a job store that fails the test that lists it.
type jobStoreUnread struct {
	jetstream.KeyValue
	t *testing.T
}

func (s jobStoreUnread) ListKeys(context.Context, ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	s.t.Error("the router scanned the job store for orphans with a peer's lease unread")
	return nil, errors.New("listed")
}

// A peer whose lease the router cannot read (a timeout, a JetStream hiccup) is not one
// whose lease lapsed: the router must not take its jobs over, only try again later. A
// lease that is gone is a lapsed one.
func TestAPeerWhoseLeaseCannotBeReadIsNotTakenForDead(t *testing.T) {
	self, alive, gone := keys.Address("router-self"), keys.Address("router-alive"), keys.Address("router-gone")
	store := leaseStore{
		leases: map[string]lease{string(self): {Router: self}},
		err:    map[string]error{string(alive): context.DeadlineExceeded, string(gone): jetstream.ErrKeyNotFound},
	}
	r := &Router{id: self, leases: store, kv: jobStoreUnread{t: t}}
	ctx := context.Background()
	if live, err := r.liveRouters(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("live routers %v, err %v; want the unread lease's error", live, err)
	}
	if err := r.adoptJobs(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("adoptJobs: %v; want the unread lease's error, before any job is claimed", err)
	}

	delete(store.err, string(alive))
	store.leases[string(alive)] = lease{Router: alive}
	live, err := r.liveRouters(ctx)
	if err != nil || len(live) != 2 || !live[self] || !live[alive] {
		t.Fatalf("live routers %v, err %v; want %s and %s, and %s's lapsed lease skipped", live, err, self, alive, gone)
	}
}
