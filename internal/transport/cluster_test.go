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

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
	ports := make([]int, size)
	for i := range ports {
		ports[i] = freePort(tb)
	}
	for i := range size {
		var routes []string
		for j, p := range ports {
			if j != i {
				routes = append(routes, "127.0.0.1:"+strconv.Itoa(p))
			}
		}
		g := NewGrants()
		srv, err := NewServer(ServerOptions{
			Name: fmt.Sprintf("r%d", i), TLS: listeners[i], StoreDir: tb.TempDir(),
			Admin: c.admin.Public().(ed25519.PublicKey), Authorize: n.authz.authorize, IDOf: n.authz.idOf,
			Buckets: []string{testBucket}, Access: g, Logger: testLogger(),
			Cluster: &ClusterOptions{Name: "test", Host: "127.0.0.1", Port: ports[i], Routes: routes, TLS: confs[i]},
		})
		if err != nil {
			tb.Fatal(err)
		}
		c.servers, c.grants = append(c.servers, srv), append(c.grants, g)
	}
	// Servers of a cluster start together: each waits for the others to form it.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i, srv := range c.servers {
		wg.Go(func() { errs[i] = srv.Start(ctx) })
	}
	wg.Wait()
	for _, srv := range c.servers {
		tb.Cleanup(func() { srv.Close() })
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
	return c
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
	admin0, err := c.servers[0].ConnectInProcess(ctx, c.admin, "router-0")
	if err != nil {
		t.Fatal(err)
	}
	defer admin0.Close()
	js0, _ := jetstream.New(admin0)
	input := []byte("replicated input")
	digest, err := PutBlob(ctx, js0, testBucket, input)
	if err != nil {
		t.Fatal(err)
	}
	admin2, err := c.servers[2].ConnectInProcess(ctx, c.admin, "router-2")
	if err != nil {
		t.Fatal(err)
	}
	defer admin2.Close()
	js2, _ := jetstream.New(admin2)
	// Replicas catch up in their own time, and a direct get may be answered by one
	// that has not yet: the copy must arrive, not at once.
	var got []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = GetBlob(ctx, js2, testBucket, digest); (err == nil && string(got) == string(input)) || time.Now().After(deadline) {
			break
		}
	}
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
	// The blob service's direct gets are answered by a replica, which may not hold the copy
	// yet, as above (a validator looks for a missing output again for this reason).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = via0.Get(ctx, digest); (err == nil && string(got) == string(input)) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || string(got) != string(input) {
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
	admin, err := c.servers[0].ConnectInProcess(ctx, c.admin, "router-0")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, _ := jetstream.New(admin)
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
