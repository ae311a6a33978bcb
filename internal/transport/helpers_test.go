package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const testBucket = "blobs"

// testNet is a running router-side server plus the keys it knows.
type testNet struct {
	srv    *Server
	admin  ed25519.PrivateKey
	nodes  map[string]ed25519.PrivateKey // node id → key
	roots  *x509.CertPool
	access *Grants
	authz  *testAuthz
}

// testAuthz admits the test's node keys until the test revokes one.
type testAuthz struct {
	mu      sync.Mutex
	byKey   map[string]string // ed25519 public key → node id
	revoked map[string]bool   // node id
}

func (z *testAuthz) authorize(pub ed25519.PublicKey) (string, bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	id, ok := z.byKey[string(pub)]
	return id, ok && !z.revoked[id]
}

func (z *testAuthz) revoke(id string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.revoked[id] = true
}

// idOf is the id authorize would give pub, revoked or not.
func (z *testAuthz) idOf(pub ed25519.PublicKey) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.byKey[string(pub)]
}

func testLogger() *slog.Logger {
	if os.Getenv("OMNISYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// startTestNet starts a server on loopback with a fresh store, a free port and
// the given node ids authorised.
func startTestNet(tb testing.TB, nodeIDs ...string) *testNet {
	tb.Helper()
	return startTestNetWith(tb, nil, nodeIDs...)
}

// testServerTLS makes a fresh CA and server certificate and returns them with the
// server's TLS config.
func testServerTLS(tb testing.TB) (*TLSFiles, *tls.Config) {
	tb.Helper()
	files, err := EnsureTLS(tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	conf, err := files.ServerConfig()
	if err != nil {
		tb.Fatal(err)
	}
	return files, conf
}

// startTestNetWith is startTestNet with a chance to adjust the server options.
func startTestNetWith(tb testing.TB, adjust func(*ServerOptions), nodeIDs ...string) *testNet {
	tb.Helper()
	files, tlsConf := testServerTLS(tb)
	roots, err := files.ClientRootCAs()
	if err != nil {
		tb.Fatal(err)
	}
	n := &testNet{
		admin: newKey(tb), nodes: map[string]ed25519.PrivateKey{}, roots: roots,
		access: NewGrants(),
		authz:  &testAuthz{byKey: map[string]string{}, revoked: map[string]bool{}},
	}
	for _, id := range nodeIDs {
		k := newKey(tb)
		n.nodes[id] = k
		n.authz.byKey[string(k.Public().(ed25519.PublicKey))] = id
	}
	opts := ServerOptions{
		TLS:       tlsConf,
		StoreDir:  tb.TempDir(),
		Admin:     n.admin.Public().(ed25519.PublicKey),
		Authorize: n.authz.authorize,
		Buckets:   []string{testBucket},
		Access:    n.access,
		Logger:    testLogger(),
	}
	if adjust != nil {
		adjust(&opts)
	}
	n.srv, err = NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.srv.Close() })
	return n
}

// adminJS is a JetStream context on an admin connection to n.
func (n *testNet) adminJS(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	js, err := jetstream.New(n.adminConn(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

func (n *testNet) adminConn(tb testing.TB) *nats.Conn {
	tb.Helper()
	nc, err := n.srv.ConnectInProcess(context.Background(), n.admin, "router")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

func (n *testNet) dialOptions(id string, onError func(error)) DialOptions {
	return DialOptions{
		URL:     n.srv.WebSocketURL(),
		Key:     n.nodes[id],
		RootCAs: n.roots,
		Name:    "node-" + id,
		OnError: onError,
		Logger:  testLogger(),
	}
}

func (n *testNet) dialNode(tb testing.TB, id string, onError func(error)) *nats.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Dial(ctx, n.dialOptions(id, onError))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// blobs is node id's blob client over conn.
func (n *testNet) blobs(conn *nats.Conn, id string) Blobs {
	return Blobs{Conn: conn, ID: id, Bucket: testBucket, Server: "router"}
}
