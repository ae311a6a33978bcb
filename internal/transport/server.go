package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// defaultStartTimeout bounds Start when ctx has no deadline, so a listener
// that never comes up is reported instead of waited on forever.
const defaultStartTimeout = 30 * time.Second

var bucketNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ServerOptions configures the embedded NATS server.
type ServerOptions struct {
	// Name names the server among its cluster's servers, and its blob service in the
	// subjects participants ask it on (Blobs.Server): one subject token, unique in the
	// cluster. Default "router".
	Name     string
	Host     string      // websocket listen host; default 127.0.0.1
	WSPort   int         // websocket+TLS listener port; 0 picks a free port
	TLS      *tls.Config // required: the websocket listener is TLS-only
	StoreDir string      // JetStream file storage (required)
	// Admin is the router's key. It gets full permissions, and only over
	// in-process connections (ConnectInProcess).
	Admin ed25519.PublicKey
	// Authorize decides whether a connecting ed25519 key may join, and under
	// what node id (one subject token). It is called for every non-admin
	// connection, from server goroutines, possibly concurrently.
	Authorize func(pub ed25519.PublicKey) (nodeID string, ok bool)
	// Buckets are object-store buckets created at Start (file storage). Participants
	// never touch them directly: they read and write through the blob service, which
	// asks Access about every request.
	Buckets []string
	// Access decides which participant may read or write which blob (see BlobAccess);
	// nil denies every participant request.
	Access BlobAccess
	// BucketMaxBytes bounds each bucket, so no participant can fill the router's disk;
	// a full bucket refuses new blobs rather than evicting old ones. Default 8 GiB.
	BucketMaxBytes int64
	// Cluster, when set, joins the server to a cluster of routers with replicated
	// JetStream (see ClusterOptions); nil runs it alone.
	Cluster *ClusterOptions
	// IDOf maps a participant's key to the id Authorize gives it, without asking anyone:
	// in a cluster a participant connected to another server asks this one's blob
	// service, whose own connections do not include it. Nil: only this server's
	// participants are served.
	IDOf func(pub ed25519.PublicKey) string
	// SimulatedFleet is for load simulation only (bench/livescale): a connection whose key
	// it maps to node ids may publish those nodes' heartbeats — omni.node.<id>.heartbeat,
	// nothing else of theirs — so that a simulator drives 100,000 nodes through a few
	// connections instead of one each. In the product every connection speaks for the one
	// key that signed its nonce; this widens that, so it is a func, which no config file,
	// environment variable, flag or network peer can set: only code that embeds the
	// server. Nil (always, outside the simulator): no such connections.
	SimulatedFleet func(pub ed25519.PublicKey) (nodeIDs []string)
	Logger         *slog.Logger // default slog.Default()
}

// DefaultBucketMaxBytes is the size of a blob bucket unless ServerOptions say otherwise.
const DefaultBucketMaxBytes = 8 << 30

// Server is an embedded NATS server with JetStream and a WebSocket+TLS
// listener. There is no plain TCP client listener: local clients use
// ConnectInProcess.
type Server struct {
	opts     ServerOptions
	log      *slog.Logger
	internal ed25519.PrivateKey // creates buckets at Start; same rights as Admin

	auth    *authenticator
	mu      sync.Mutex
	ns      *server.Server
	wsURL   string
	started bool
	closed  bool
	blobs   *blobService
	// fatal holds the first error the NATS server logged as fatal (a port it could not
	// listen on, say): the server cannot run, and Start says so at once rather than
	// wait out its context for a server that will never be ready.
	fatal chan string
}

// NewServer validates opts and returns a server that is not yet running.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Name == "" {
		opts.Name = "router"
	}
	if opts.BucketMaxBytes <= 0 {
		opts.BucketMaxBytes = DefaultBucketMaxBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	switch {
	case opts.TLS == nil:
		return nil, fmt.Errorf("%w: tls config is required for the websocket listener", ErrInvalidOptions)
	case opts.StoreDir == "":
		return nil, fmt.Errorf("%w: jetstream store dir is required", ErrInvalidOptions)
	case len(opts.Admin) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("%w: admin key must be an ed25519 public key", ErrInvalidOptions)
	case opts.Authorize == nil:
		return nil, fmt.Errorf("%w: authorize func is required", ErrInvalidOptions)
	case opts.WSPort < 0 || opts.WSPort > 65535:
		return nil, fmt.Errorf("%w: websocket port %d out of range", ErrInvalidOptions, opts.WSPort)
	case !validNodeID(opts.Name):
		return nil, fmt.Errorf("%w: server name %q must be one subject token", ErrInvalidOptions, opts.Name)
	}
	if opts.Cluster != nil {
		c := *opts.Cluster
		if err := c.check(); err != nil {
			return nil, err
		}
		opts.Cluster = &c
	}
	for _, b := range opts.Buckets {
		if !bucketNameRe.MatchString(b) {
			return nil, fmt.Errorf("%w: bucket name %q (want letters, digits, _ or -)", ErrInvalidOptions, b)
		}
	}
	_, internal, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate internal key: %v", ErrServer, err)
	}
	s := &Server{opts: opts, log: opts.Logger, internal: internal, fatal: make(chan string, 1)}
	s.auth = &authenticator{
		admins:    []ed25519.PublicKey{opts.Admin, internal.Public().(ed25519.PublicKey)},
		authorize: opts.Authorize,
		fleet:     opts.SimulatedFleet,
		log:       opts.Logger,
		conns:     map[uint64]participant{},
		byID:      map[string]map[uint64]bool{},
	}
	return s, nil
}

// Start runs the server and returns once it accepts connections and its
// buckets exist. On error the server is shut down again.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return fmt.Errorf("%w: server already started or closed", ErrServer)
	}
	s.started = true
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultStartTimeout)
		defer cancel()
	}

	ns, err := server.NewServer(s.natsOptions())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrServer, err)
	}
	ns.SetLoggerV2(slogAdapter{s.log, s.fatal}, s.log.Enabled(ctx, slog.LevelDebug), false, false)
	ns.Start()
	s.ns = ns

	if err := s.waitReady(ctx); err != nil {
		s.shutdownLocked()
		return err
	}
	if err := s.createBuckets(ctx); err != nil {
		s.shutdownLocked()
		return err
	}
	if err := s.startBlobService(ctx); err != nil {
		s.shutdownLocked()
		return err
	}
	s.log.Info("nats server ready", "websocket", s.wsURL, "store", s.opts.StoreDir, "buckets", s.opts.Buckets)
	return nil
}

func (s *Server) natsOptions() *server.Options {
	wsPort := s.opts.WSPort
	if wsPort == 0 {
		wsPort = -1 // the server's "random port"; 0 would disable the listener
	}
	o := &server.Options{
		ServerName: s.opts.Name,
		DontListen: true, // no TCP client port; in-process connections still work
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   s.opts.StoreDir,
		Websocket: server.WebsocketOpts{
			Host:             s.opts.Host,
			Port:             wsPort,
			TLSConfig:        s.opts.TLS,
			HandshakeTimeout: 10 * time.Second,
		},
		AlwaysEnableNonce:          true,
		CustomClientAuthentication: s.auth,
	}
	if s.opts.Cluster != nil {
		s.opts.Cluster.apply(o)
		// The server starts its routes only once a client listener is open: give it one on
		// a random loopback port. Clients there are authenticated like any participant (an
		// admin key is refused: it is not in-process), and only this host can reach it.
		o.DontListen, o.Host, o.Port = false, "127.0.0.1", -1
	}
	return o
}

func (s *Server) waitReady(ctx context.Context) error {
	for !s.ns.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-s.fatal:
			return fmt.Errorf("%w: %s", ErrServer, msg)
		default:
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: not ready for connections: %w", ErrServer, err)
		}
	}
	if !s.ns.JetStreamEnabled() {
		return fmt.Errorf("%w: jetstream did not start (store %s)", ErrServer, s.opts.StoreDir)
	}
	u, err := url.Parse(s.ns.WebsocketURL()) // holds the port actually bound
	if err != nil || u.Port() == "" || u.Port() == "0" || u.Port() == "-1" {
		return fmt.Errorf("%w: websocket listener has no address (%q)", ErrServer, s.ns.WebsocketURL())
	}
	host := s.opts.Host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	s.wsURL = "wss://" + net.JoinHostPort(host, u.Port())
	return nil
}

func (s *Server) createBuckets(ctx context.Context) error {
	if len(s.opts.Buckets) == 0 {
		return nil
	}
	nc, err := s.connectInProcess(ctx, s.ns, s.internal, "omnisync-transport-setup")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrServer, err)
	}
	for _, b := range s.opts.Buckets {
		err := UntilClusterReady(ctx, func(ctx context.Context) error {
			_, err := js.ObjectStore(ctx, b)
			if errors.Is(err, jetstream.ErrBucketNotFound) {
				_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
					Bucket:      b,
					Description: "OmniSync content-addressed blobs",
					Storage:     jetstream.FileStorage,
					MaxBytes:    s.opts.BucketMaxBytes,
					Replicas:    s.Replicas(),
				})
			}
			if err == nil && s.Replicas() > 1 {
				err = streamLed(ctx, js, objectStream(b))
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("%w: bucket %s: %v", ErrServer, b, err)
		}
	}
	return nil
}

// Close shuts the server down and waits for it; it is safe to call more than
// once and before Start.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.shutdownLocked()
	return nil
}

func (s *Server) shutdownLocked() {
	if s.blobs != nil {
		s.blobs.close()
		s.blobs = nil
	}
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// WebSocketURL is the address nodes dial, e.g. "wss://127.0.0.1:4443". It is
// empty until Start succeeds.
func (s *Server) WebSocketURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wsURL
}

// Reauthorize re-decides every admitted participant connection: keep reports whether
// the participant (its id and key) may stay, and each one it refuses is disconnected at
// once. Rights are otherwise fixed at connect, so a router calls this whenever the chain
// may have taken a participant's standing away (deactivated, slashed, unstaked), and
// it forgets the connections that have closed since the last call. It
// returns the ids it disconnected.
func (s *Server) Reauthorize(keep func(id string, pub ed25519.PublicKey) bool) []string {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil {
		return nil
	}
	admitted := s.auth.admitted()
	open := map[uint64]bool{}
	if cz, err := ns.Connz(&server.ConnzOptions{Limit: len(admitted) + 1024}); err == nil {
		for _, c := range cz.Conns {
			open[c.Cid] = true
		}
	}
	var dropped []string
	for cid, p := range admitted {
		if !open[cid] {
			s.auth.forget(cid) // closed by itself; nothing to withdraw
			continue
		}
		if keep(p.id, p.pub) {
			continue
		}
		s.auth.forget(cid)
		if err := ns.DisconnectClientByID(cid); err != nil {
			continue // already gone
		}
		s.log.Info("participant disconnected: its rights were withdrawn", "id", p.id)
		dropped = append(dropped, p.id)
	}
	return dropped
}

// ConnectInProcess opens a connection that bypasses the network. key is
// normally the Admin key (full permissions); a node key works too and gets
// that node's permissions, which lets the devnet run nodes without sockets.
// Async errors are logged.
func (s *Server) ConnectInProcess(ctx context.Context, key ed25519.PrivateKey, name string) (*nats.Conn, error) {
	s.mu.Lock()
	ns := s.ns
	s.mu.Unlock()
	if ns == nil {
		return nil, fmt.Errorf("%w: server is not running", ErrConnect)
	}
	return s.connectInProcess(ctx, ns, key, name)
}

func (s *Server) connectInProcess(ctx context.Context, ns *server.Server, key ed25519.PrivateKey, name string) (*nats.Conn, error) {
	auth, err := identity(key)
	if err != nil {
		return nil, err
	}
	log := s.log.With("conn", name)
	return connect(ctx, "", append(auth,
		nats.InProcessServer(ns),
		nats.Name(name),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			log.Warn("nats async error", "subject", subjectOf(sub), "err", err)
		}),
	)...)
}

// slogAdapter routes the NATS server's log lines into slog, and the first fatal one
// into fatal as well: the NATS server, embedded, logs where its own binary would exit.
type slogAdapter struct {
	log   *slog.Logger
	fatal chan<- string
}

func (a slogAdapter) Noticef(format string, v ...any) { a.log.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.log.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.log.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.log.Debug(fmt.Sprintf(format, v...)) }

func (a slogAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.log.Error(msg)
	select {
	case a.fatal <- msg:
	default: // the first is enough
	}
}
