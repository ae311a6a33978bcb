package transport

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testCluster is three servers routed to each other, each with its own grants, sharing
// one CA and one set of authorised participants.
type testCluster struct {
	servers []*Server
	grants  []*Grants
	admin   ed25519.PrivateKey
	net     *testNet // participants' keys, authz and trust roots
}

// freePorts returns n distinct ports that were free a moment ago: each listener stays
// open until all are picked, so the kernel cannot hand out one port twice.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// clusterTLS makes n TLS directories sharing one CA and returns their cluster configs.
func clusterTLS(tb testing.TB, n int) (routes, listeners []*tls.Config, files []*TLSFiles) {
	tb.Helper()
	first := tb.TempDir()
	for i := range n {
		dir := first
		if i > 0 {
			dir = tb.TempDir()
			if err := ShareCA(first, dir); err != nil {
				tb.Fatal(err)
			}
		}
		f, err := EnsureTLS(dir, nil)
		if err != nil {
			tb.Fatal(err)
		}
		route, err := f.ClusterConfig()
		if err != nil {
			tb.Fatal(err)
		}
		listener, err := f.ServerConfig()
		if err != nil {
			tb.Fatal(err)
		}
		routes, listeners, files = append(routes, route), append(listeners, listener), append(files, f)
	}
	return routes, listeners, files
}

const (
	// clusterAttempts bounds the clusters startTestCluster starts before it gives up.
	clusterAttempts = 3
	// clusterAttemptTimeout bounds one attempt; a cluster forms in about 5 s, and a
	// server that cannot bind its port fails at once (Server.Start).
	clusterAttemptTimeout = 40 * time.Second
)

// startTestCluster starts three servers routed to each other. Their route ports are
// picked before the servers bind them, as each must name the others', so another
// process may take one in between: then that server fails to start, the attempt's
// servers are closed, and a new cluster is started on fresh ports.
func startTestCluster(tb testing.TB, nodeIDs ...string) *testCluster {
	tb.Helper()
	const size = 3
	n := &testNet{nodes: map[string]ed25519.PrivateKey{}, authz: &testAuthz{byKey: map[string]string{}, revoked: map[string]bool{}}}
	for _, id := range nodeIDs {
		k := newKey(tb)
		n.nodes[id] = k
		n.authz.byKey[string(k.Public().(ed25519.PublicKey))] = id
	}
	confs, listeners, files := clusterTLS(tb, size)
	roots, err := files[0].ClientRootCAs()
	if err != nil {
		tb.Fatal(err)
	}
	n.roots = roots
	c := &testCluster{admin: newKey(tb), net: n}
	for attempt := 1; ; attempt++ {
		err := c.start(tb, confs, listeners)
		if err == nil {
			return c
		}
		if attempt == clusterAttempts {
			tb.Fatalf("no cluster formed in %d attempts; the last: %v", attempt, err)
		}
		tb.Logf("cluster attempt %d failed, starting another on fresh ports: %v", attempt, err)
	}
}

// start starts one server per route TLS config, on fresh route ports and stores. If any
// fails to start, it closes them all and returns why.
func (c *testCluster) start(tb testing.TB, confs, listeners []*tls.Config) error {
	tb.Helper()
	ports := freePorts(tb, len(confs))
	var servers []*Server
	var grants []*Grants
	for i := range confs {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, "127.0.0.1:"+strconv.Itoa(p))
			}
		}
		g := NewGrants()
		srv, err := NewServer(ServerOptions{
			Name: fmt.Sprintf("r%d", i), TLS: listeners[i], StoreDir: tb.TempDir(),
			Admin: c.admin.Public().(ed25519.PublicKey), Authorize: c.net.authz.authorize, IDOf: c.net.authz.idOf,
			Buckets: []string{testBucket}, Access: g, Logger: testLogger(),
			Cluster: &ClusterOptions{Name: "test", Host: "127.0.0.1", Port: ports[i], Routes: routes, TLS: confs[i]},
		})
		if err != nil {
			tb.Fatal(err)
		}
		servers, grants = append(servers, srv), append(grants, g)
	}
	// Servers of a cluster start together: each waits for the others to form it, in
	// vain once one has failed.
	ctx, cancel := context.WithTimeout(context.Background(), clusterAttemptTimeout)
	defer cancel()
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			if errs[i] = srv.Start(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, srv := range servers {
			srv.Close()
		}
		return err
	}
	for _, srv := range servers {
		tb.Cleanup(func() { srv.Close() })
	}
	c.servers, c.grants = servers, grants
	return nil
}

// adminJS is a router's JetStream on the cluster's server, over an in-process connection
// closed when the test ends.
func (c *testCluster) adminJS(tb testing.TB, ctx context.Context, server int) jetstream.JetStream {
	tb.Helper()
	nc, err := c.servers[server].ConnectInProcess(ctx, c.admin, fmt.Sprintf("router-%d", server))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

func (c *testCluster) dial(tb testing.TB, server int, id string) *nats.Conn {
	tb.Helper()
	c.net.srv = c.servers[server]
	return c.net.dialNode(tb, id, nil)
}

func TestClusterReplicatesBlobsAndCarriesRequestsToTheGrantingServer(t *testing.T) {
	c := startTestCluster(t, "node-a", "node-b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i, srv := range c.servers {
		if srv.Replicas() != 3 || len(srv.Peers()) != 2 {
			t.Fatalf("server %d: %d replicas, peers %v; want 3 and the two others", i, srv.Replicas(), srv.Peers())
		}
	}
	// The router on server 0 stores an input; server 2's copy of the bucket has it.
	js0 := c.adminJS(t, ctx, 0)
	input := []byte("replicated input")
	digest, err := PutBlob(ctx, js0, testBucket, input)
	if err != nil {
		t.Fatal(err)
	}
	js2 := c.adminJS(t, ctx, 2)
	// Replicas catch up in their own time, and a direct get may be answered by one that
	// has not yet: then the router asks the leader, so the copy is read at once.
	got, err := GetBlob(ctx, js2, testBucket, digest)
	if err != nil || string(got) != string(input) {
		t.Fatalf("server 2 reads %q, %v; want the input server 0 stored", got, err)
	}
	// The same content put again, through another server: a small blob is written first,
	// and the replicated stream's refusal of a second name must read as "stored already".
	if _, err := PutBlob(ctx, js2, testBucket, input); err != nil {
		t.Fatalf("putting stored content again through server 2: %v", err)
	}

	// Node a is connected to server 1; server 0's router granted it the input. Its
	// request names server 0 and is carried there; server 1's blob service, which
	// granted nothing, refuses the same request.
	revoke := c.grants[0].AllowRead("node-a", digest)
	defer revoke()
	conn := c.dial(t, 1, "node-a")
	via0 := c.net.blobs(conn, "node-a").Via("r0")
	// A replica behind the leader may answer the service's direct gets; the service then
	// asks the leader, so the input is read at once.
	if got, err = via0.Get(ctx, digest); err != nil || string(got) != string(input) {
		t.Fatalf("node on server 1 reads %q, %v through server 0's blob service", got, err)
	}
	if _, err := via0.Via("r1").Get(ctx, digest); !errors.Is(err, ErrForbidden) {
		t.Fatalf("server 1 granted nothing, yet answered %v", err)
	}
	// Node b, on server 2, has no grant from server 0.
	connB := c.dial(t, 2, "node-b")
	if _, err := c.net.blobs(connB, "node-b").Via("r0").Get(ctx, digest); !errors.Is(err, ErrForbidden) {
		t.Fatalf("node b read an input granted to node a: %v", err)
	}
}

// A server whose certificate comes from another CA cannot join: routes are mutual TLS.
func TestClusterRefusesAPeerWithoutTheClusterCA(t *testing.T) {
	c := startTestCluster(t)
	intruderConf, intruderListener, _ := clusterTLS(t, 1)
	var routes []string
	for _, srv := range c.servers {
		routes = append(routes, srv.ClusterAddr())
	}
	intruder, err := NewServer(ServerOptions{
		Name: "intruder", TLS: intruderListener[0], StoreDir: t.TempDir(),
		Admin: newKey(t).Public().(ed25519.PublicKey), Authorize: func(ed25519.PublicKey) (string, bool) { return "", false },
		Logger:  testLogger(),
		Cluster: &ClusterOptions{Name: "test", Host: "127.0.0.1", Routes: routes, TLS: intruderConf[0], Replicas: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := intruder.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	time.Sleep(2 * time.Second) // route attempts are made, and refused, in the background
	if p := intruder.Peers(); len(p) != 0 {
		t.Fatalf("a server with a foreign CA has routes into the cluster: %v", p)
	}
	for i, srv := range c.servers {
		if p := srv.Peers(); slices.Contains(p, "intruder") || len(p) != 2 {
			t.Fatalf("server %d is routed to %v; the intruder must not be one", i, p)
		}
	}
}

// A participant connected to another server of the cluster, with a grant of its own,
// names the victim's inbox as the reply of its read: the granting server answers only
// into the requester's own inbox, so the victim hears nothing, while the same request
// with the requester's inbox is served.
func TestClusterBlobServiceAnswersOnlyTheRequestersInbox(t *testing.T) {
	c := startTestCluster(t, "victim", "mallory")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := c.adminJS(t, ctx, 0)
	data := []byte("mallory's own input")
	digest, err := PutBlob(ctx, js, testBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	revoke := c.grants[0].AllowRead("mallory", digest)
	defer revoke()

	victim := c.dial(t, 1, "victim")
	victimInbox, err := InboxPrefix(c.net.nodes["victim"].Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	heard, err := victim.SubscribeSync(victimInbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Flush(); err != nil {
		t.Fatal(err)
	}
	mallory := c.dial(t, 2, "mallory")
	blobs := c.net.blobs(mallory, "mallory").Via("r0")
	body, _ := json.Marshal(blobRequest{Bucket: testBucket, Digest: digest, Batch: 1})
	if err := mallory.PublishRequest(blobs.subject(blobVerbRead), victimInbox+".stolen", body); err != nil {
		t.Fatal(err)
	}
	if m, err := heard.NextMsg(time.Second); err == nil {
		t.Fatalf("the blob service answered into the victim's inbox: %q", m.Subject)
	}
	if got, err := blobs.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the same read into mallory's own inbox: %q, %v", got, err)
	}
}

// Blobs just stored are read at once, with no retry, through the blob service of a
// server that follows the stream's leader, and by that server's router. Its own replica
// answers their direct gets and may not hold a blob yet: the service, and the router's
// Bucket, ask the leader before they answer "not found".
func TestClusterBlobJustStoredReadsThroughAFollower(t *testing.T) {
	c := startTestCluster(t, "node-a")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	js := c.adminJS(t, ctx, 0)
	st, err := js.Stream(ctx, objectStream(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	led := st.CachedInfo().Cluster
	leader := slices.IndexFunc(c.servers, func(s *Server) bool { return led != nil && s.opts.Name == led.Leader })
	if leader < 0 {
		t.Fatalf("the stream's leader is none of the servers: %+v", led)
	}
	follower := (leader + 1) % len(c.servers)
	blobs := c.net.blobs(c.dial(t, follower, "node-a"), "node-a").Via(c.servers[follower].opts.Name)
	followerJS := c.adminJS(t, ctx, follower)
	router := NewBucket(followerJS, testBucket)
	// Other writes keep the replicas busy, as a router's are under load.
	busy, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() {
		for i := 0; busy.Err() == nil; i++ {
			_, _ = PutBlob(busy, js, testBucket, randomBytes(objectChunk, uint64(1000+i)))
		}
	})
	for i := range 100 {
		data := randomBytes(1+i%4*(objectChunk/2), uint64(i)) // one chunk or two
		digest, err := PutBlob(ctx, js, testBucket, data)
		if err != nil {
			t.Fatal(err)
		}
		c.grants[follower].AllowRead("node-a", digest)
		if got, err := blobs.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("blob %d (%d bytes), read at once through follower r%d: %d bytes, %v", i, len(data), follower, len(got), err)
		}
		if got, err := router.Get(ctx, digest); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("blob %d (%d bytes), read at once by follower r%d's router: %d bytes, %v", i, len(data), follower, len(got), err)
		}
	}
}
