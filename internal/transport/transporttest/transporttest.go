// Package transporttest starts real embedded NATS servers for other packages' tests: TLS
// material in a temporary directory, a server on a free loopback port, and an admin
// connection with JetStream. It is imported only by tests.
package transporttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

// TLS generates a CA and server certificate for loopback in a temporary directory.
func TLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	files, err := transport.EnsureTLS(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := files.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	roots, err := files.ClientRootCAs()
	if err != nil {
		t.Fatal(err)
	}
	return conf, roots
}

// Net is a running server with an admin (router-side) connection.
type Net struct {
	Server *transport.Server
	Admin  *nats.Conn
	JS     jetstream.JetStream
	Roots  *x509.CertPool
	// Grants is the server's blob access: a test grants the participant what the router
	// would (a job's inputs to read, its output to write).
	Grants *transport.Grants
}

// Start runs a server with the blob bucket that admits exactly the given participant
// key (under its address as id), and connects an admin to it. Everything closes when the
// test ends.
func Start(t testing.TB, participant ed25519.PrivateKey) *Net {
	t.Helper()
	conf, roots := TLS(t)
	_, admin, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := string(keys.AddressOfKey(participant))
	grants := transport.NewGrants()
	srv, err := transport.NewServer(transport.ServerOptions{
		TLS: conf, StoreDir: t.TempDir(), Admin: admin.Public().(ed25519.PublicKey), Buckets: []string{protocol.BlobBucket}, Access: grants,
		Authorize: func(pub ed25519.PublicKey) (string, bool) { return id, string(keys.AddressOf(pub)) == id },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	nc, err := srv.ConnectInProcess(ctx, admin, "router")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &Net{Server: srv, Admin: nc, JS: js, Roots: roots, Grants: grants}
}

// Key returns a fresh ed25519 key.
func Key(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
