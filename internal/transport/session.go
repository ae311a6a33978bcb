package transport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// SessionOptions describe a participant's (a node's or a validator's) link to the router.
type SessionOptions struct {
	Dial DialOptions
	// Inbox is the subject the participant serves; Handle answers each request on it.
	// Handle's ctx ends when the session closes.
	Inbox  string
	Handle func(ctx context.Context, m *nats.Msg)
	// Beat returns the heartbeat to publish (subject and payload), once at start and
	// then every Heartbeat.
	Heartbeat time.Duration
	Beat      func() (subject string, payload []byte)
	// Drain, if set, runs at Close after the session's context ends and before the
	// connection closes, so work the handlers started can report its last results.
	Drain func()
}

// Session is a participant's live link to the router: the connection, the handler on its
// inbox and the heartbeat loop. One goroutine owns the loop; Close
// stops it, drains, then disconnects.
type Session struct {
	Conn   *nats.Conn
	opts   SessionOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// StartSession dials the router, subscribes the inbox and starts heartbeating. The inbox
// subscription is confirmed by the server before it returns.
func StartSession(ctx context.Context, o SessionOptions) (*Session, error) {
	if o.Inbox == "" || o.Handle == nil || o.Beat == nil || o.Heartbeat <= 0 {
		return nil, fmt.Errorf("%w: a session needs an inbox, a handler, a heartbeat and its interval", ErrInvalidOptions)
	}
	conn, err := Dial(ctx, o.Dial)
	if err != nil {
		return nil, fmt.Errorf("connect to router %s: %w", o.Dial.URL, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Session{Conn: conn, opts: o, cancel: cancel}
	if _, err := conn.Subscribe(o.Inbox, func(m *nats.Msg) { o.Handle(runCtx, m) }); err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("%w: subscribe %s: %v", ErrConnect, o.Inbox, err)
	}
	if err := conn.Flush(); err != nil {
		cancel()
		conn.Close()
		return nil, fmt.Errorf("%w: subscribe %s: %v", ErrConnect, o.Inbox, err)
	}
	s.beat()
	s.wg.Add(1)
	go s.heartbeatLoop(runCtx)
	return s, nil
}

func (s *Session) heartbeatLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.beat()
		}
	}
}

func (s *Session) beat() {
	subject, payload := s.opts.Beat()
	if err := s.Conn.Publish(subject, payload); err != nil && s.opts.Dial.OnError != nil {
		s.opts.Dial.OnError(fmt.Errorf("heartbeat: %w", err))
	}
}

// Close ends the handlers' context and the heartbeat loop, drains, and disconnects. It is
// safe to call more than once.
func (s *Session) Close() {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		if s.opts.Drain != nil {
			s.opts.Drain()
		}
		s.Conn.Close()
	})
}
