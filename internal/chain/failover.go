package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/cometbft/cometbft/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/internal/metrics"
)

// rpcAPI is what a Client asks of a chain node's RPC: a CometBFT client in process or
// over HTTP, or a failover over several of the latter.
type rpcAPI interface {
	ABCIInfo(ctx context.Context) (*ctypes.ResultABCIInfo, error)
	ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error)
	ABCIQueryWithOptions(ctx context.Context, path string, data cmtbytes.HexBytes, opts rpcclient.ABCIQueryOptions) (*ctypes.ResultABCIQuery, error)
	BroadcastTxAsync(ctx context.Context, tx types.Tx) (*ctypes.ResultBroadcastTx, error)
	BroadcastTxSync(ctx context.Context, tx types.Tx) (*ctypes.ResultBroadcastTx, error)
	Block(ctx context.Context, height *int64) (*ctypes.ResultBlock, error)
	BlockResults(ctx context.Context, height *int64) (*ctypes.ResultBlockResults, error)
	Commit(ctx context.Context, height *int64) (*ctypes.ResultCommit, error)
	Tx(ctx context.Context, hash []byte, prove bool) (*ctypes.ResultTx, error)
	Status(ctx context.Context) (*ctypes.ResultStatus, error)
}

// NewHTTPClient connects to a chain node's CometBFT RPC, such as "http://127.0.0.1:26657"
// (a bare host:port is taken as http), or to several, separated by commas: the client
// then sends everything to the first until it cannot be reached, then to the next, and
// to the first again once it is back (failover). Each chain node of one network answers
// for the same chain, so any of them serves; the others are there for when one is down,
// stalled or cut off.
func NewHTTPClient(urls string) (*Client, error) {
	var f failover
	for u := range strings.SplitSeq(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		c, err := newRPC(u)
		if err != nil {
			return nil, fmt.Errorf("chain rpc %s: %w", u, err)
		}
		f.urls, f.rpcs = append(f.urls, u), append(f.rpcs, c)
	}
	switch len(f.rpcs) {
	case 0:
		return nil, fmt.Errorf("chain rpc %q: no URL", urls)
	case 1:
		return &Client{rpc: f.rpcs[0]}, nil
	}
	f.attempt, f.failBack, f.now = failoverAttempt, failBackAfter, time.Now
	f.failovers = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "omnisync_chain_rpc_failovers_total",
		Help: "Switches from the chain RPC in use to another that answered, after the first could not be reached.",
	})
	f.inUse = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "omnisync_chain_rpc_in_use",
		Help: "1 for the chain RPC this daemon uses now, 0 for the others it may fail over to.",
	}, []string{"url"})
	for _, u := range f.urls[1:] {
		f.inUse.WithLabelValues(u).Set(0)
	}
	f.inUse.WithLabelValues(f.urls[0]).Set(1)
	return &Client{rpc: &f}, nil
}

// RegisterMetrics puts the client's series in reg: how often it failed over
// (omnisync_chain_rpc_failovers_total) and which chain RPC it uses now
// (omnisync_chain_rpc_in_use). A client of one chain RPC has nothing to count and
// registers nothing.
func (c *Client) RegisterMetrics(reg prometheus.Registerer) error {
	f, ok := c.rpc.(*failover)
	if !ok {
		return nil
	}
	return metrics.Register(reg, f.failovers, f.inUse)
}

// dialTimeout bounds a connection to a chain node's RPC, the name's look-up included.
// CometBFT's own HTTP client dials without one, and without the request's context: where
// a chain node's container was gone, Docker's resolver never answered for its name, and
// each daemon's first call after the kill waited out the whole attempt (5 s) before it
// failed over.
const dialTimeout = 2 * time.Second

// newRPC is CometBFT's HTTP client for url, which dials http and https URLs within
// dialTimeout and the request's context (others, such as unix sockets, as CometBFT does).
func newRPC(u string) (*rpchttp.HTTP, error) {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return rpchttp.New(u)
	}
	d := &net.Dialer{Timeout: dialTimeout}
	return rpchttp.NewWithClient(u, &http.Client{Transport: &http.Transport{
		DisableCompression: true, // as CometBFT's: no gzip bombs
		DialContext:        d.DialContext,
		Proxy:              http.ProxyFromEnvironment,
	}})
}

// LogFailovers has the client log each switch from one chain node's RPC to another.
// Without it, switches are silent.
func (c *Client) LogFailovers(log *slog.Logger) {
	if f, ok := c.rpc.(*failover); ok {
		f.log = log
	}
}

// failoverAttempt is how long a failover waits for one chain node's answer before it asks
// the next: a node that accepts connections and never answers (stalled, or its host
// overloaded) is as good as down. Every call a client makes is answered within a block or
// two by a live node.
const failoverAttempt = 5 * time.Second

// failBackAfter is how long a failover stays away from the first chain RPC of its list,
// the operator's choice (often the chain node beside the daemon), before it asks that one
// whether it is back; and how long it waits to ask again while it is not.
const failBackAfter = 30 * time.Second

// failover is an rpcAPI over several chain nodes' RPCs. It sends every call to the one in
// use (current) until a call cannot reach it, then tries the others in turn, and goes on
// with the first that answers. Only the transport's failures move it on (Unreachable): an
// answer, even an error such as a rejected tx or a tx not found, is the chain's, which
// any node would give alike. A call retried on another node is harmless: queries read,
// and a tx sent twice is executed at most once (its sequence), the second copy refused.
//
// Away from the first node, it fails back (failBack): a call made failBack or more after
// the move, or after the last such check, has that node's status asked beside it, and
// once the node answers and is not catching up, later calls go to it again. Without
// this, every daemon that once failed over stayed on the node it moved to, so that a
// restart of one chain node left the others' RPCs carrying all of a network's load.
type failover struct {
	urls    []string
	rpcs    []rpcAPI
	current atomic.Int32
	attempt time.Duration // see failoverAttempt
	log     *slog.Logger  // nil: silent

	failBack time.Duration    // see failBackAfter; 0: never
	now      func() time.Time // the clock failBack is read on
	checked  atomic.Int64     // when it moved away from the first node, or last asked it (UnixNano)
	probing  atomic.Bool      // a check of the first node is under way

	failovers prometheus.Counter
	inUse     *prometheus.GaugeVec // by URL
}

// call runs do on the node in use, then on each other in turn while the last could not be
// reached, within ctx. The node that answers is used from then on.
func call[T any](f *failover, ctx context.Context, do func(context.Context, rpcAPI) (T, error)) (T, error) {
	at := int(f.current.Load())
	if at != 0 {
		f.mayFailBack()
	}
	var zero T
	var errs []error
	for tried := range len(f.rpcs) {
		i := (at + tried) % len(f.rpcs)
		actx, cancel := context.WithTimeout(ctx, f.attempt)
		v, err := do(actx, f.rpcs[i])
		cancel()
		answered := err == nil || !Unreachable(err)
		if answered && tried > 0 && f.current.CompareAndSwap(int32(at), int32(i)) {
			f.switched(at, i, errors.Join(errs...))
		}
		if answered || ctx.Err() != nil {
			return v, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", f.urls[i], err))
	}
	return zero, fmt.Errorf("no chain RPC could be reached: %w", errors.Join(errs...))
}

// switched records a move from the chain RPC at index from to the one at to.
func (f *failover) switched(from, to int, why error) {
	if from == 0 && f.now != nil {
		f.checked.Store(f.now().UnixNano())
	}
	if f.failovers != nil {
		f.failovers.Inc()
	}
	f.markInUse(from, to)
	if f.log != nil {
		f.log.Warn("chain RPC failed over", "from", f.urls[from], "to", f.urls[to], "error", why)
	}
}

// markInUse moves omnisync_chain_rpc_in_use from the chain RPC at index from to the one
// at to.
func (f *failover) markInUse(from, to int) {
	if f.inUse != nil {
		f.inUse.WithLabelValues(f.urls[from]).Set(0)
		f.inUse.WithLabelValues(f.urls[to]).Set(1)
	}
}

// mayFailBack asks the first node for its status, in the background, if failBack has
// passed since the failover moved away from it or last asked, and no other call is
// asking; if it answers and is not catching up (a node that was down replays the blocks
// it missed before it serves the chain's state), the failover moves back to it.
func (f *failover) mayFailBack() {
	if f.failBack <= 0 {
		return
	}
	now := f.now().UnixNano()
	if time.Duration(now-f.checked.Load()) < f.failBack || !f.probing.CompareAndSwap(false, true) {
		return
	}
	f.checked.Store(now)
	go func() {
		defer f.probing.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), f.attempt)
		defer cancel()
		st, err := f.rpcs[0].Status(ctx)
		if err != nil || st.SyncInfo.CatchingUp {
			return
		}
		if at := f.current.Load(); at != 0 && f.current.CompareAndSwap(at, 0) {
			f.markInUse(int(at), 0)
			if f.log != nil {
				f.log.Warn("chain RPC failed back", "from", f.urls[at], "to", f.urls[0])
			}
		}
	}()
}

// Unreachable reports whether err, from a Client's call, is the transport's and not a
// chain node's answer: no connection, a connection cut or timed out, or a reply that is
// not JSON-RPC (a proxy's error page). A failover moves on from a node on such errors
// only, and the command line tells a user it could not reach the chain RPC.
func Unreachable(err error) bool {
	var (
		ue *url.Error
		ne net.Error
		se *json.SyntaxError
	)
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.As(err, &se) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

func (f *failover) ABCIInfo(ctx context.Context) (*ctypes.ResultABCIInfo, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultABCIInfo, error) { return r.ABCIInfo(ctx) })
}

func (f *failover) ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultABCIQuery, error) {
		return r.ABCIQuery(ctx, path, data)
	})
}

func (f *failover) ABCIQueryWithOptions(ctx context.Context, path string, data cmtbytes.HexBytes, opts rpcclient.ABCIQueryOptions) (*ctypes.ResultABCIQuery, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultABCIQuery, error) {
		return r.ABCIQueryWithOptions(ctx, path, data, opts)
	})
}

func (f *failover) BroadcastTxAsync(ctx context.Context, tx types.Tx) (*ctypes.ResultBroadcastTx, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultBroadcastTx, error) {
		return r.BroadcastTxAsync(ctx, tx)
	})
}

func (f *failover) BroadcastTxSync(ctx context.Context, tx types.Tx) (*ctypes.ResultBroadcastTx, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultBroadcastTx, error) {
		return r.BroadcastTxSync(ctx, tx)
	})
}

func (f *failover) Block(ctx context.Context, height *int64) (*ctypes.ResultBlock, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultBlock, error) { return r.Block(ctx, height) })
}

func (f *failover) BlockResults(ctx context.Context, height *int64) (*ctypes.ResultBlockResults, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultBlockResults, error) {
		return r.BlockResults(ctx, height)
	})
}

func (f *failover) Commit(ctx context.Context, height *int64) (*ctypes.ResultCommit, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultCommit, error) { return r.Commit(ctx, height) })
}

func (f *failover) Tx(ctx context.Context, hash []byte, prove bool) (*ctypes.ResultTx, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultTx, error) { return r.Tx(ctx, hash, prove) })
}

func (f *failover) Status(ctx context.Context) (*ctypes.ResultStatus, error) {
	return call(f, ctx, func(ctx context.Context, r rpcAPI) (*ctypes.ResultStatus, error) { return r.Status(ctx) })
}
