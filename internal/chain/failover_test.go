package chain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
)

// scriptedRPC is a chain node's RPC that answers Status as its script says; the rest of
// rpcAPI is unused here.
type scriptedRPC struct {
	rpcAPI
	name   string
	calls  atomic.Int32
	answer func(ctx context.Context) error // nil: answers
}

func (s *scriptedRPC) Status(ctx context.Context) (*ctypes.ResultStatus, error) {
	s.calls.Add(1)
	if s.answer != nil {
		if err := s.answer(ctx); err != nil {
			return nil, err
		}
	}
	st := &ctypes.ResultStatus{}
	st.NodeInfo.Moniker = s.name
	return st, nil
}

func refused(context.Context) error {
	return fmt.Errorf("post failed: %w", &url.Error{Op: "Post", URL: "http://x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}})
}

func stalls(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("post failed: %w", &url.Error{Op: "Post", URL: "http://x", Err: ctx.Err()})
}

func newFailover(nodes ...*scriptedRPC) *failover {
	f := &failover{attempt: 50 * time.Millisecond}
	for _, n := range nodes {
		f.urls, f.rpcs = append(f.urls, "http://"+n.name), append(f.rpcs, n)
	}
	return f
}

func answeredBy(t *testing.T, f *failover, want string) {
	t.Helper()
	st, err := f.Status(context.Background())
	if err != nil {
		t.Fatalf("want an answer from %s: %v", want, err)
	}
	if st.NodeInfo.Moniker != want {
		t.Fatalf("answered by %s, want %s", st.NodeInfo.Moniker, want)
	}
}

// A node that cannot be reached, refusing connections or never answering, hands the call
// to the next; the next keeps every later call, without the dead node asked again.
func TestFailoverMovesOnFromANodeThatCannotBeReached(t *testing.T) {
	for _, dead := range []func(context.Context) error{refused, stalls} {
		a, b, c := &scriptedRPC{name: "a", answer: dead}, &scriptedRPC{name: "b"}, &scriptedRPC{name: "c"}
		f := newFailover(a, b, c)
		answeredBy(t, f, "b")
		answeredBy(t, f, "b")
		if a.calls.Load() != 1 || b.calls.Load() != 2 || c.calls.Load() != 0 {
			t.Fatalf("calls a %d, b %d, c %d: want the dead node asked once, then b only", a.calls.Load(), b.calls.Load(), c.calls.Load())
		}
		// b dies too: c, and a is asked again only after c has failed.
		b.answer = refused
		answeredBy(t, f, "c")
		if a.calls.Load() != 1 {
			t.Fatalf("a asked %d times, want once: c answered first", a.calls.Load())
		}
	}
}

// An answer that is an error (a rejected tx, a tx not found) is the chain's: every node
// would give it, so it is returned as it is and the node kept.
func TestFailoverKeepsANodeThatAnswersWithAnError(t *testing.T) {
	notFound := &rpctypes.RPCError{Code: -32603, Message: "Internal error", Data: "tx (ABC) not found"}
	a, b := &scriptedRPC{name: "a", answer: func(context.Context) error { return fmt.Errorf("error in json rpc client: %w", notFound) }}, &scriptedRPC{name: "b"}
	f := newFailover(a, b)
	if _, err := f.Status(context.Background()); !errors.As(err, new(*rpctypes.RPCError)) {
		t.Fatalf("error %v, want a's answer", err)
	}
	if b.calls.Load() != 0 || f.current.Load() != 0 {
		t.Fatalf("b asked %d times, current %d: want a kept", b.calls.Load(), f.current.Load())
	}
}

// A caller who gives up is not failed over: the node it asked may be slow for the
// caller's deadline, not down.
func TestFailoverStopsWhenTheCallerGivesUp(t *testing.T) {
	a, b := &scriptedRPC{name: "a", answer: stalls}, &scriptedRPC{name: "b"}
	f := newFailover(a, b)
	f.attempt = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	if b.calls.Load() != 0 || f.current.Load() != 0 {
		t.Fatalf("b asked %d times, current %d: want neither moved", b.calls.Load(), f.current.Load())
	}
	// Nor is it moved to a node that the caller's deadline cut off too.
	a.answer, b.answer = refused, stalls
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the caller's deadline", err)
	}
	if f.current.Load() != 0 {
		t.Fatalf("current %d: moved to a node that never answered", f.current.Load())
	}
}

// When none can be reached, the error names each node and what went wrong there, and the
// next call starts again from the node in use.
func TestFailoverReportsEveryNodeWhenNoneAnswers(t *testing.T) {
	a, b := &scriptedRPC{name: "a", answer: refused}, &scriptedRPC{name: "b", answer: stalls}
	f := newFailover(a, b)
	_, err := f.Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no chain RPC could be reached") ||
		!strings.Contains(err.Error(), "http://a: ") || !strings.Contains(err.Error(), "http://b: ") {
		t.Fatalf("error %v, want each node's failure", err)
	}
	if !errors.As(err, new(*url.Error)) {
		t.Fatalf("error %v does not wrap the transport's", err)
	}
	if f.current.Load() != 0 {
		t.Fatalf("current %d, want 0", f.current.Load())
	}
}

// Over HTTP against a real chain node: a client given a port nobody listens on and a
// proxy's error page before the node reads the chain and submits through the node.
func TestHTTPClientFailsOverToALiveChainNode(t *testing.T) {
	home := t.TempDir()
	alice, bob := testKey(1), testKey(2)
	initSingle(t, home, alice)
	n := startNode(t, home)
	defer n.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
	}))
	defer proxy.Close()

	c, err := NewHTTPClient(closed + ", " + proxy.URL + "," + n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	if err := c.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := c.ChainID(ctx)
	if err != nil || id != "omnisync-chaintest" {
		t.Fatalf("chain id %q (%v)", id, err)
	}
	if _, err := NewSigner(c, alice, id).Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(bob), Amount: ledger.UomniPerOMNI}}); err != nil {
		t.Fatalf("submit through the failover: %v", err)
	}
	if got, err := c.Account(ctx, keys.AddressOfKey(bob)); err != nil || got.Balance != ledger.UomniPerOMNI*98/100 {
		t.Fatalf("bob holds %+v (%v), want 1 OMNI less the 2%% burn", got, err)
	}
	// A rejection is the chain's answer, not a dead node's.
	_, err = NewSigner(c, bob, id).Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(alice), Amount: 1_000 * ledger.UomniPerOMNI}})
	if !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v, want ErrInsufficientFunds", err)
	}

	// One switch, from the first to the third, which every call since has used.
	metricstest.ScrapeGatherer(t, reg).Want(t, map[string]float64{
		`omnisync_chain_rpc_failovers_total`:                     1,
		`omnisync_chain_rpc_in_use{url="http://` + closed + `"}`: 0,
		`omnisync_chain_rpc_in_use{url="` + proxy.URL + `"}`:     0,
		`omnisync_chain_rpc_in_use{url="` + n.RPCURL() + `"}`:    1,
	})

	for _, bad := range []string{"", " , ", "http://[::1"} {
		if _, err := NewHTTPClient(bad); err == nil {
			t.Errorf("NewHTTPClient(%q) accepted", bad)
		}
	}
}

// Away from the first node, the failover asks it, beside a call, once failBack has
// passed, and goes back to it once it answers and has caught up with the chain; until
// then calls stay where they are, and the first node is asked at most once a failBack.
func TestFailoverFailsBackToTheFirstNodeOnceItIsBack(t *testing.T) {
	a, b := &scriptedRPC{name: "a", answer: refused}, &scriptedRPC{name: "b"}
	f := newFailover(a, b)
	var clock atomic.Int64
	f.failBack, f.now = time.Minute, func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	settled := func() { // the check of a in the background has ended
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); f.probing.Load(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the check of the first node never ended")
			}
		}
	}
	answeredBy(t, f, "b") // a is down: moved to b
	if a.calls.Load() != 1 {
		t.Fatalf("a asked %d times, want once", a.calls.Load())
	}

	// Still down: asked once failBack has passed, not before, and calls stay on b.
	advance(f.failBack - time.Second)
	answeredBy(t, f, "b")
	settled()
	if a.calls.Load() != 1 {
		t.Fatalf("a asked %d times before failBack passed, want once", a.calls.Load())
	}
	advance(time.Second)
	answeredBy(t, f, "b")
	answeredBy(t, f, "b")
	settled()
	if a.calls.Load() != 2 || f.current.Load() != 1 {
		t.Fatalf("a asked %d times, current %d: want a asked once more and b kept", a.calls.Load(), f.current.Load())
	}

	// Back, but replaying the blocks it missed: not yet.
	catchingUp := &scriptedRPC{name: "a"}
	f.rpcs[0] = &catchingUpRPC{catchingUp}
	advance(f.failBack)
	answeredBy(t, f, "b")
	settled()
	if catchingUp.calls.Load() != 1 || f.current.Load() != 1 {
		t.Fatalf("a asked %d times, current %d: want a node catching up asked and left", catchingUp.calls.Load(), f.current.Load())
	}

	// Caught up: the failover goes back to it.
	a.answer = nil
	f.rpcs[0] = a
	advance(f.failBack)
	answeredBy(t, f, "b") // the call that finds failBack passed is b's still
	settled()
	answeredBy(t, f, "a")
	answeredBy(t, f, "a")
}

// catchingUpRPC answers Status as a node replaying the blocks it missed does.
type catchingUpRPC struct{ *scriptedRPC }

func (c *catchingUpRPC) Status(ctx context.Context) (*ctypes.ResultStatus, error) {
	st, err := c.scriptedRPC.Status(ctx)
	if st != nil {
		st.SyncInfo.CatchingUp = true
	}
	return st, err
}
