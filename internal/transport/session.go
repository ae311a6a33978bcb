package transport

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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
	// then every Heartbeat, or every interval SetHeartbeat sets, and at BeatNow.
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

	interval atomic.Int64  // nanoseconds between heartbeats
	now      chan struct{} // BeatNow asks the loop for a heartbeat at once
	retime   chan struct{} // SetHeartbeat tells the loop its interval changed
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
	s := &Session{Conn: conn, opts: o, cancel: cancel, now: make(chan struct{}, 1), retime: make(chan struct{}, 1)}
	s.interval.Store(int64(o.Heartbeat))
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

// SetHeartbeat changes the interval between heartbeats (a router's pace); the next one
// is due that long after the last.
func (s *Session) SetHeartbeat(d time.Duration) {
	if d <= 0 || s.interval.Swap(int64(d)) == int64(d) {
		return
	}
	select {
	case s.retime <- struct{}{}:
	default:
	}
}

// BeatNow heartbeats at once, from the session's loop, because the participant's state
// changed; the interval starts again from it.
func (s *Session) BeatNow() {
	select {
	case s.now <- struct{}{}:
	default: // one is already due
	}
}

func (s *Session) heartbeatLoop(ctx context.Context) {
	defer s.wg.Done()
	last := time.Now()
	t := time.NewTimer(s.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.retime:
			t.Reset(time.Until(last.Add(time.Duration(s.interval.Load()))))
			continue
		case <-s.now:
		case <-t.C:
		}
		s.beat()
		last = time.Now()
		t.Reset(time.Duration(s.interval.Load()))
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
