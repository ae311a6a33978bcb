package transport

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// browserUserAgent makes the server cap WebSocket frames at 4 KiB. Without a
// "Mozilla/" user agent it merges its whole outbound queue into one frame, and
// nats.go drops frames above 8×max_payload and reconnects (DESIGN §9).
const browserUserAgent = "Mozilla/5.0 (OmniSync node)"

// Reconnect backoff: doubling from reconnectMin up to reconnectMax, plus up to
// 20% jitter so a router restart is not met by every node at once.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 30 * time.Second
)

// DialOptions configures a node's connection to the router.
type DialOptions struct {
	// URL is "wss://host:port", or several separated by commas: the routers of one
	// cluster, tried in random order at connect and whenever the connection drops.
	URL     string
	Key     ed25519.PrivateKey // the node's identity; signs the server nonce
	RootCAs *x509.CertPool     // trust roots for the router's cert; nil = system roots
	Name    string             // connection name shown in server logs
	// OnError receives asynchronous errors, notably permission violations
	// (wrapped in ErrPermissionDenied) which NATS never returns from Publish or
	// Subscribe. It runs on the connection's callback goroutine.
	OnError func(error)
	// Now is the clock the router's certificate is judged by; nil is time.Now.
	Now    func() time.Time
	Logger *slog.Logger // default slog.Default()
}

// Dial connects a node to the router over WebSocket + TLS 1.3 and keeps the
// connection alive: after the first successful connect it reconnects forever
// with backoff. A key the router does not know fails with ErrUnauthorized.
func Dial(ctx context.Context, o DialOptions) (*nats.Conn, error) {
	return dial(ctx, o, http.Header{"User-Agent": []string{browserUserAgent}})
}

// dial is Dial with the WebSocket headers as a parameter, so the benchmark can
// measure what the browser user agent is worth.
func dial(ctx context.Context, o DialOptions, headers http.Header) (*nats.Conn, error) {
	for _, one := range strings.Split(o.URL, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Scheme != "wss" || u.Host == "" {
			return nil, fmt.Errorf("%w: url %q is not wss://host:port", ErrInvalidOptions, one)
		}
	}
	auth, err := identity(o.Key)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("url", o.URL, "conn", o.Name)
	onError := o.OnError
	if onError == nil {
		onError = func(error) {}
	}
	return connect(ctx, o.URL, append(auth,
		nats.Name(o.Name),
		nats.Secure(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: o.RootCAs, Time: o.Now}),
		nats.WebSocketConnectionHeaders(headers),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.IgnoreAuthErrorAbort(),      // a restarting router may not know us yet
		nats.IgnoreDiscoveredServers(),   // peers advertise addresses only their own network reaches
		nats.PingInterval(5*time.Second), // a router cut off is left within about 15 s (MaxPingsOut 2)
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			switch {
			case errors.Is(err, nats.ErrPermissionViolation):
				err = fmt.Errorf("%w: %w", ErrPermissionDenied, err)
			case errors.Is(err, nats.ErrAuthorization): // refused on reconnecting
				err = fmt.Errorf("%w: %w", ErrUnauthorized, err)
			}
			log.Warn("nats async error", "subject", subjectOf(sub), "err", err)
			onError(err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from router", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("reconnected to router") }),
	)...)
}

func reconnectDelay(attempts int) time.Duration {
	d := reconnectMax
	if attempts < 16 {
		d = min(reconnectMin<<max(attempts-1, 0), reconnectMax)
	}
	return d + rand.N(d/5+1)
}

// identity authenticates as the user NKEY of key, signing the nonce, and takes replies
// in that key's own inbox (InboxPrefix), the only one its rights let it read.
func identity(key ed25519.PrivateKey) ([]nats.Option, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: ed25519 private key has %d bytes", ErrInvalidOptions, len(key))
	}
	pub := key.Public().(ed25519.PublicKey)
	nkey, err := EncodeNkey(pub)
	if err != nil {
		return nil, err
	}
	inbox, err := InboxPrefix(pub)
	if err != nil {
		return nil, err
	}
	return []nats.Option{
		nats.Nkey(nkey, func(nonce []byte) ([]byte, error) { return ed25519.Sign(key, nonce), nil }),
		nats.CustomInboxPrefix(inbox),
	}, nil
}

// syncQueueLen bounds the messages a synchronous subscription buffers. nats.go's default,
// 65,536, makes every SubscribeSync allocate and zero a 512 KiB channel, and every blob
// read and upload makes one: 6% of a busy devnet's CPU. Ours hold a batch of chunks (at
// most batchBytes of them and a status) or an upload window of acks.
const syncQueueLen = 4096

// connect is nats.Connect bounded by ctx, with errors mapped to sentinels.
func connect(ctx context.Context, url string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.SyncQueueLen(syncQueueLen)}, opts...)
	if deadline, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(max(time.Until(deadline), time.Millisecond)))
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		switch {
		case errors.Is(r.err, nats.ErrAuthorization):
			return nil, fmt.Errorf("%w: server rejected this key: %v", ErrUnauthorized, r.err)
		case r.err != nil:
			return nil, fmt.Errorf("%w: %s: %v", ErrConnect, displayURL(url), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("%w: %s: %w", ErrConnect, displayURL(url), ctx.Err())
	}
}

func displayURL(url string) string {
	if url == "" {
		return "in-process"
	}
	return url
}

func subjectOf(sub *nats.Subscription) string {
	if sub == nil {
		return ""
	}
	return sub.Subject
}
