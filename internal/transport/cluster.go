package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterOptions join a router's server to a NATS cluster of routers, so that several
// routers share one JetStream: every bucket is replicated on Replicas servers, and a
// message published on any server reaches subscribers on all of them.
//
// Routes between the servers are mutual TLS: each server presents a certificate its
// peers verify against RootCAs, and accepts only peers whose certificate chains to it.
// The routers of one cluster therefore share one CA (TLSFiles.ClusterConfig); nothing
// without a certificate from it can join, and participants never get one.
type ClusterOptions struct {
	Name   string   // cluster name, the same on every server
	Host   string   // route listener host; default 0.0.0.0
	Port   int      // route listener port; 0 picks a free one
	Routes []string // host:port of the other servers' route listeners
	// TLS is the mutual TLS of the routes: Certificates (this server's), RootCAs and
	// ClientCAs (the cluster CA). Required.
	TLS *tls.Config
	// Replicas of every JetStream bucket; default 3, or the cluster's size if smaller.
	Replicas int
}

// DefaultReplicas is how many servers hold each bucket in a cluster of three or more.
const DefaultReplicas = 3

func (c *ClusterOptions) check() error {
	if c.Host == "" {
		c.Host = "0.0.0.0"
	}
	if c.Replicas <= 0 {
		c.Replicas = min(DefaultReplicas, len(c.Routes)+1)
	}
	switch {
	case !bucketNameRe.MatchString(c.Name):
		return fmt.Errorf("%w: cluster name %q (want letters, digits, _ or -)", ErrInvalidOptions, c.Name)
	case c.TLS == nil || len(c.TLS.Certificates) == 0 || c.TLS.RootCAs == nil || c.TLS.ClientCAs == nil:
		return fmt.Errorf("%w: cluster routes need mutual TLS: a certificate, root CAs and client CAs", ErrInvalidOptions)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: cluster port %d out of range", ErrInvalidOptions, c.Port)
	case c.Replicas > len(c.Routes)+1:
		return fmt.Errorf("%w: %d replicas need at least %d servers, but %d routes are configured", ErrInvalidOptions, c.Replicas, c.Replicas, len(c.Routes))
	}
	for _, r := range c.Routes {
		if _, _, err := net.SplitHostPort(r); err != nil {
			return fmt.Errorf("%w: cluster route %q: want host:port", ErrInvalidOptions, r)
		}
	}
	return nil
}

// apply adds the cluster to the NATS server's options.
func (c *ClusterOptions) apply(o *server.Options) {
	port := c.Port
	if port == 0 {
		port = -1 // the server's "random port"
	}
	tlsConf := c.TLS.Clone()
	tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
	tlsConf.MinVersion = tls.VersionTLS13
	// A peer proves itself by a certificate from the cluster CA, whatever address it is
	// dialled at (a peer's IP is not in its certificate): verify the chain, not the name.
	roots := c.TLS.RootCAs
	tlsConf.InsecureSkipVerify = true
	tlsConf.VerifyConnection = func(cs tls.ConnectionState) error { return verifyChain(cs, roots) }
	o.Cluster = server.ClusterOpts{
		Name: c.Name, Host: c.Host, Port: port, TLSConfig: tlsConf, TLSTimeout: 5,
		ConnectRetries: -1, // a peer that is down is dialled again until it returns
		// The routes are configured, a full mesh: no gossip of peers' addresses, which
		// would have the servers dial each other again by IP.
		NoAdvertise: true,
		// A peer cut off drops no connection: its packets just stop. With NATS's default
		// two-minute pings its route stays up that long, and requests the cluster sends
		// it (a direct get's replica, say) vanish. Ping every routePing instead.
		PingInterval: routePing, MaxPingsOut: routeMaxPingsOut,
	}
	for _, r := range c.Routes {
		o.Routes = append(o.Routes, &url.URL{Scheme: "nats-route", Host: r})
	}
}

// verifyChain checks that the peer's certificate chains to roots; with InsecureSkipVerify
// set, it is the whole check of a server's certificate (clients' certificates are checked
// against ClientCAs by the handshake itself).
func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("cluster peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("cluster peer's certificate is not from the cluster CA: %w", err)
	}
	return nil
}

// ClusterConfig is the mutual TLS of a cluster's routes: this router's certificate,
// and its CA as the only trust root for peers in both directions. Every router of a
// cluster must have the same CA in its TLS directory (copy ca.pem and ca-key.pem there
// before the first start; EnsureTLS then issues each its own certificate from it).
func (f *TLSFiles) ClusterConfig() (*tls.Config, error) {
	conf, err := f.ServerConfig()
	if err != nil {
		return nil, err
	}
	pool, err := f.ClientRootCAs()
	if err != nil {
		return nil, err
	}
	conf.RootCAs, conf.ClientCAs, conf.ClientAuth = pool, pool, tls.RequireAndVerifyClientCert
	return conf, nil
}

// ClusterAddr is the host:port the server's route listener is bound to, or "" when it
// is not in a cluster.
func (s *Server) ClusterAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ns == nil || s.opts.Cluster == nil {
		return ""
	}
	addr := s.ns.ClusterAddr()
	if addr == nil {
		return ""
	}
	return net.JoinHostPort(s.opts.Cluster.Host, strconv.Itoa(addr.Port))
}

// Replicas is how many servers hold each bucket: 1 outside a cluster.
func (s *Server) Replicas() int {
	if s.opts.Cluster == nil {
		return 1
	}
	return s.opts.Cluster.Replicas
}

// Peers names the other servers of the cluster this one is routed to now.
func (s *Server) Peers() []string {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil {
		return nil
	}
	rz, err := ns.Routez(nil)
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range rz.Routes { // a pool of several connections per peer
		if !slices.Contains(names, r.RemoteName) {
			names = append(names, r.RemoteName)
		}
	}
	slices.Sort(names)
	return names
}

// JetStreamHealth is "ok" when this server's JetStream is current (in a cluster: it has a
// meta leader and every replica it holds has caught up), else what is not.
func (s *Server) JetStreamHealth() string {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil {
		return "not running"
	}
	h := ns.Healthz(&server.HealthzOptions{})
	if h.Status == "ok" {
		return "ok"
	}
	if h.Error != "" {
		return h.Error
	}
	return h.Status
}

// A route whose peer missed routeMaxPingsOut pings, one every routePing, is closed.
const (
	routePing        = time.Second
	routeMaxPingsOut = 3
)

// clusterRetry is how often bucket creation is tried again while a cluster forms.
const clusterRetry = 250 * time.Millisecond

// UntilClusterReady retries f while the cluster's JetStream is still forming (no meta
// leader yet, too few peers for the replicas): servers of a cluster start in any order,
// and each waits for enough of the others until ctx ends.
func UntilClusterReady(ctx context.Context, f func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(actx)
		cancel()
		if err == nil || !forming(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (the cluster did not form before %w)", err, ctx.Err())
		case <-time.After(clusterRetry):
		}
	}
}

// errNoStreamLeader is a replicated stream that exists but has not elected its leader:
// until it does, a put to it finds no responders.
var errNoStreamLeader = errors.New("stream has no leader yet")

// streamLed returns errNoStreamLeader until the stream name has a leader, so that a
// server's Start does not return before a blob can be stored.
func streamLed(ctx context.Context, js jetstream.JetStream, name string) error {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return errNoStreamLeader // created through another server, not yet known to this one
	} else if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return errNoStreamLeader
	}
	return nil
}

// forming reports errors that mean "not yet" while a JetStream cluster forms.
func forming(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled,
			10005, // no suitable peers for placement (yet)
			10008, // JetStream system temporarily unavailable (no meta leader yet)
			10009, // cluster can not handle request (leader changing)
			10023: // insufficient resources (peers not yet known)
			return true
		}
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errNoStreamLeader) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount)
}

// ShareCA copies the CA of the TLS directory from (certificate and key) into the TLS
// directory to, so that a router started there joins from's cluster: EnsureTLS then
// issues its own certificate from the shared CA. An existing, different CA in to is
// an error rather than replaced.
func ShareCA(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrTLS, err)
	}
	for name, perm := range map[string]os.FileMode{caCertFile: 0o644, caKeyFile: 0o600} {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return fmt.Errorf("%w: read the shared CA: %v", ErrTLS, err)
		}
		dst := filepath.Join(to, name)
		if old, err := os.ReadFile(dst); err == nil {
			if !bytes.Equal(old, data) {
				return fmt.Errorf("%w: %s holds another CA; remove it to join this cluster", ErrTLS, dst)
			}
			continue
		}
		if err := os.WriteFile(dst, data, perm); err != nil {
			return fmt.Errorf("%w: %v", ErrTLS, err)
		}
	}
	return nil
}
