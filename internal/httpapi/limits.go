package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/omnisync/omnisync/api"
)

// Limits bound what one client can make the server hold: connections, time and memory.
// Zero fields take the defaults below.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's line and headers.
	ReadHeaderTimeout time.Duration
	// BodyIdleTimeout is the longest a request body may go without sending a byte, so a
	// client that sends headers and then nothing is dropped after it. A body that keeps
	// arriving is never cut by it, however long it takes (see MinBodyRate).
	BodyIdleTimeout time.Duration
	// MinBodyRate (bytes/s) is the slowest a body may arrive on average once its first
	// BodyIdleTimeout has passed, so a client that drips a byte now and then cannot hold a
	// connection and its share of BodyBudget indefinitely.
	MinBodyRate int64
	// WriteTimeout is how long a handler has to answer once its request has been read (its
	// context ends then too); event streams and downloads move it on as they progress.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers.
	MaxHeaderBytes int
	// BodyBudget is the memory all request bodies in flight may take together, whatever
	// the number of clients: a JSON body reserves its length (its route's limit when the
	// length is unknown) until its handler returns, a streamed upload a fixed buffer.
	BodyBudget int64
	// BudgetWait is how long a request waits for room in BodyBudget before it is refused
	// with 503 and Retry-After.
	BudgetWait time.Duration
	// MaxJobBody bounds the JSON body of POST /v1/jobs, inline inputs included; larger
	// inputs are streamed with PUT /v1/jobs/{id}/inputs/{name}.
	MaxJobBody int64
}

// Default limits. A body must average 32 KiB/s (a slow mobile link) after its first 10 s.
// 64 MiB of bodies in flight allows four full-size job submissions at once, or 1,024
// streamed uploads.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyIdleTimeout   = 10 * time.Second
	DefaultMinBodyRate       = 32 << 10
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultBodyBudget        = 64 << 20
	DefaultBudgetWait        = time.Second
	DefaultMaxJobBody        = 16 << 20

	// uploadChunk is the most one read of a streamed upload asks of the connection, and what
	// each upload reserves from the budget.
	uploadChunk = 64 << 10
)

// withDefaults fills zero fields and checks the rest.
func (l Limits) withDefaults() (Limits, error) {
	set := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	set(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	set(&l.BodyIdleTimeout, DefaultBodyIdleTimeout)
	set(&l.WriteTimeout, DefaultWriteTimeout)
	set(&l.IdleTimeout, DefaultIdleTimeout)
	set(&l.BudgetWait, DefaultBudgetWait)
	if l.MinBodyRate == 0 {
		l.MinBodyRate = DefaultMinBodyRate
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.BodyBudget == 0 {
		l.BodyBudget = DefaultBodyBudget
	}
	if l.MaxJobBody == 0 {
		l.MaxJobBody = DefaultMaxJobBody
	}
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": l.ReadHeaderTimeout, "BodyIdleTimeout": l.BodyIdleTimeout,
		"WriteTimeout": l.WriteTimeout, "IdleTimeout": l.IdleTimeout, "BudgetWait": l.BudgetWait} {
		if d < 0 {
			return l, fmt.Errorf("httpapi: Limits.%s %v is negative", name, d)
		}
	}
	if l.MinBodyRate < 0 || l.MaxHeaderBytes < 0 || l.MaxJobBody < 0 {
		return l, errors.New("httpapi: Limits.MinBodyRate, MaxHeaderBytes and MaxJobBody must not be negative")
	}
	// Every body must fit the budget alone, or it could never be served.
	if need := max(l.MaxJobBody, maxTxBody, uploadChunk); l.BodyBudget < need {
		return l, fmt.Errorf("httpapi: Limits.BodyBudget %d is below the largest body it must hold (%d)", l.BodyBudget, need)
	}
	return l, nil
}

// NewServer returns the API's handler (see NewHandler) in an http.Server whose timeouts
// are opts.Limits. The caller sets Addr or passes a listener to Serve.
//
// ReadTimeout is only the backstop for a body no handler reads (a 405 or 415, say): every
// body a handler reads moves the read deadline on as it arrives (BodyIdleTimeout,
// MinBodyRate), which a fixed ReadTimeout could not do without cutting large uploads.
func NewServer(opts Options) (*http.Server, error) {
	h, err := NewHandler(opts)
	if err != nil {
		return nil, err
	}
	l := h.(*server).limits
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadHeaderTimeout + l.BodyIdleTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}, nil
}

// budget is a counting semaphore over bytes: the memory request bodies may hold at once.
type budget struct {
	mu      sync.Mutex
	free    int64
	changed chan struct{} // closed, and replaced, whenever bytes are released
}

func newBudget(size int64) *budget { return &budget{free: size, changed: make(chan struct{})} }

// errBusy refuses a request the budget has no room for; it travels as 503 with Retry-After.
var errBusy = fmt.Errorf("%w: too many request bodies in flight, retry shortly", api.ErrUnavailable)

// reserve takes n bytes, waiting at most wait for them, and returns the function that gives
// them back; it fails with errBusy, or ctx's error when the client leaves.
func (b *budget) reserve(ctx context.Context, n int64, wait time.Duration) (release func(), err error) {
	var timer <-chan time.Time
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { b.release(n) }) }, nil
		}
		changed := b.changed
		b.mu.Unlock()
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-timer:
			return nil, errBusy
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", api.ErrUnavailable, ctx.Err())
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	close(b.changed)
	b.changed = make(chan struct{})
}

// bodyReader moves the connection's deadlines on as a request body arrives: each read must
// bring bytes within the idle timeout and the client must keep up the minimum rate, while
// the write deadline stays a full WriteTimeout ahead so the handler can still answer a
// long upload. At the end of the body the read deadline becomes the handler's time to
// answer: net/http ends the request's context when it passes (its background read, which
// watches for the client leaving, fails then).
//
// Only time spent waiting for the client counts against the rate: a handler that reads
// slowly (its store pushing back) or late does not make its client look slow.
type bodyReader struct {
	body        io.ReadCloser
	rc          *http.ResponseController
	limits      *Limits
	n           int64         // bytes read so far
	waited      time.Duration // time spent blocked in reads
	err         error         // the first error a read returned
	noDeadlines bool          // the connection has none (a handler tested in process)
}

func (s *server) newBodyReader(w http.ResponseWriter, body io.ReadCloser) *bodyReader {
	return &bodyReader{body: body, rc: http.NewResponseController(w), limits: &s.limits}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) > uploadChunk {
		p = p[:uploadChunk]
	}
	l := b.limits
	start := time.Now()
	if !b.noDeadlines {
		// the client has had idle + n/rate to send n bytes; what it has not used of that
		// allowance, up to idle, is the wait for the next ones
		allowance := l.BodyIdleTimeout + time.Duration(float64(b.n)/float64(l.MinBodyRate)*float64(time.Second)) - b.waited
		if err := b.rc.SetReadDeadline(start.Add(min(l.BodyIdleTimeout, allowance))); errors.Is(err, http.ErrNotSupported) {
			b.noDeadlines = true
		} else {
			_ = b.rc.SetWriteDeadline(start.Add(l.WriteTimeout))
		}
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	b.waited += time.Since(start)
	if err != nil {
		b.err = err
		// A body that failed keeps its expired deadline, so net/http gives up on the rest
		// at once and closes the connection after the reply.
		if err == io.EOF && !b.noDeadlines {
			_ = b.rc.SetReadDeadline(time.Now().Add(l.WriteTimeout))
		}
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.body.Close() }
