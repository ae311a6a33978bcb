package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/transport"
)

// ErrNotServing is why a node stopped on its own: the router refused its key because the
// chain no longer lists it as an active node (unstaked, slashed below the minimum, or
// never registered). Reconnecting cannot help until its operator stakes or registers.
var ErrNotServing = errors.New("node refused by the router")

// standingTimeout bounds the chain query that judges a refusal.
const standingTimeout = 10 * time.Second

// onConnError is the connection's error callback. A refused key is judged against the
// chain, once at a time: a router that restarted may not know an active node yet, so only
// the chain's word stops the node.
func (d *Daemon) onConnError(err error) {
	d.log.Warn("router connection", "err", err)
	if !errors.Is(err, transport.ErrUnauthorized) || !d.judging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer d.judging.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), standingTimeout)
		defer cancel()
		if why := d.standing(ctx); why != nil {
			d.stop(why)
		}
	}()
}

// standing returns why the chain does not let the node serve, or nil when it does (or the
// chain cannot say).
func (d *Daemon) standing(ctx context.Context) error {
	var n ledger.Node
	err := d.opts.Chain.Query(ctx, "node/"+d.id, &n)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Errorf("%w: node %s is not registered on chain; register it with `omnisync node register` (it stakes at least the minimum node stake)", ErrNotServing, d.id)
	case err != nil:
		d.log.Warn("cannot check the node's registration", "err", err)
		return nil
	case n.Status != ledger.NodeActive:
		var p ledger.Params
		min := "the minimum node stake"
		if d.opts.Chain.Query(ctx, "params", &p) == nil {
			min = ledger.FormatOMNI(p.MinNodeStake) + " OMNI"
		}
		return fmt.Errorf("%w: node %s is %s on chain with %s OMNI staked, below %s; stake more with `omnisync stake add --role node AMOUNT`, then start it again",
			ErrNotServing, d.id, n.Status, ledger.FormatOMNI(n.Stake), min)
	}
	return nil
}

// stop ends the node for good with err: it closes the router connection, which stops its
// reconnecting, and reports err through Done and Err.
func (d *Daemon) stop(err error) {
	d.stopOnce.Do(func() {
		d.mu.Lock()
		d.stopErr = err
		conn := d.conn
		d.mu.Unlock()
		d.log.Error("node stopped", "err", err)
		if conn != nil {
			conn.Close()
		}
		close(d.stopped)
	})
}

// Done is closed when the node has stopped on its own; Err then says why.
func (d *Daemon) Done() <-chan struct{} { return d.stopped }

// Err is why the node stopped on its own (wrapping ErrNotServing), or nil.
func (d *Daemon) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopErr
}
