package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// Proof of capacity, the node's side: a validator sends a challenge (a chain of dense
// products, verify.CapacityChallenge) to omni.node.<id>.capacity.<validator>, times the
// answer (every link's digest) against the rate this node declared, and then asks for
// the products of a few links to spot-check them. The node answers validators only, one
// challenge at a time, stops a challenge at its deadline and keeps an answered one's
// products for capacityKeep.

// CapacitySolver solves a capacity challenge; proceed says whether to go on (false past
// the deadline). The default is verify.SolveCapacityWhile on the CPU.
type CapacitySolver func(ctx context.Context, ch verify.CapacityChallenge, proceed func() bool) (verify.CapacitySolution, error)

// capacityKeep is how long a node keeps an answered challenge's products for its spot
// checks.
const capacityKeep = time.Minute

// capacityState is the challenges a node is solving or has answered; one owner, mu.
type capacityState struct {
	mu      sync.Mutex
	busy    bool
	solved  map[string]solvedChallenge // by seed
	refused map[string]time.Time       // challengers the chain did not list as validators, until when
	wg      sync.WaitGroup             // challenges being solved
}

// A challenger the chain does not list as an active validator is refused for refusedFor
// without asking the chain again: anyone may publish a challenge to any node, and a stream
// of them must not cost the node (and its chain node) a query each. At most maxRefused are
// remembered; beyond that the oldest memory is dropped whole.
const (
	refusedFor = time.Minute
	maxRefused = 1024
)

type solvedChallenge struct {
	validator string
	sol       verify.CapacitySolution
	until     time.Time
}

func defaultCapacitySolver(_ context.Context, ch verify.CapacityChallenge, proceed func() bool) (verify.CapacitySolution, error) {
	return verify.SolveCapacityWhile(ch, proceed)
}

// gpuCapacitySolver solves challenges with gpu's products, each on the CPU where the GPU
// fails it: a node that computes its jobs on a GPU proves its rate on it.
func gpuCapacitySolver(gpu runtime.GPU) CapacitySolver {
	mul := func(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error) {
		if c, err := gpu.MatMulInt8(a, b); err == nil {
			return c, nil
		}
		return tensor.MatMulInt8(a, b)
	}
	return func(_ context.Context, ch verify.CapacityChallenge, proceed func() bool) (verify.CapacitySolution, error) {
		return verify.SolveCapacityWith(ch, proceed, mul)
	}
}

// serveCapacity subscribes to the node's capacity subject; ctx ends the challenges under
// way when the node stops.
func (d *Daemon) serveCapacity(ctx context.Context, conn *nats.Conn) error {
	_, err := conn.Subscribe(protocol.AllCapacity(d.id), func(m *nats.Msg) { d.onCapacity(ctx, m) })
	return err
}

// onCapacity answers a challenge or a spot request. The asker is the subject's last
// token, which the transport lets only that participant publish.
func (d *Daemon) onCapacity(ctx context.Context, m *nats.Msg) {
	asker := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	if spot, err := protocol.Decode[protocol.SpotRequest](m.Data); err == nil {
		d.respond(m, d.spot(asker, spot))
		return
	}
	req, err := protocol.Decode[protocol.CapacityRequest](m.Data)
	if err != nil {
		d.respond(m, protocol.CapacityAnswer{Seed: strings.Repeat("0", 64), Error: err.Error()})
		return
	}
	fail := func(err error) { d.respond(m, protocol.CapacityAnswer{Seed: req.Seed, Error: err.Error()}) }
	if req.Node != d.id {
		fail(fmt.Errorf("challenge for %s sent to %s", req.Node, d.id))
		return
	}
	if err := d.isValidator(ctx, asker); err != nil {
		fail(err)
		return
	}
	c := &d.capacity
	c.mu.Lock()
	if c.busy {
		c.mu.Unlock()
		fail(errors.New("busy with another capacity challenge"))
		return
	}
	c.busy = true
	c.wg.Add(1)
	c.mu.Unlock()
	// Solved off the subscription's goroutine, so the spot requests that follow are
	// not queued behind it.
	go func() {
		defer c.wg.Done()
		ans := d.solveCapacity(ctx, asker, req)
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
		d.respond(m, ans)
	}()
}

// isValidator refuses a challenger that is not an active validator on chain: a node may
// publish to another's capacity subject, and must not make it work.
func (d *Daemon) isValidator(ctx context.Context, id string) error {
	c := &d.capacity
	now := d.opts.Now()
	c.mu.Lock()
	until, refused := c.refused[id]
	c.mu.Unlock()
	if refused && now.Before(until) {
		return fmt.Errorf("challenger %s is not an active validator (asked the chain %s ago)", id, refusedFor-until.Sub(now).Round(time.Second))
	}
	var v ledger.Validator
	err := d.opts.Chain.Query(ctx, "validator/"+id, &v)
	switch {
	case errors.Is(err, ledger.ErrNotFound) || err == nil && v.Power() == 0:
		c.mu.Lock()
		if len(c.refused) >= maxRefused {
			c.refused = map[string]time.Time{}
		}
		c.refused[id] = now.Add(refusedFor)
		c.mu.Unlock()
		return fmt.Errorf("challenger %s is not an active validator", id)
	case err != nil:
		return fmt.Errorf("challenger %s: %w", id, err)
	}
	return nil
}

func (d *Daemon) solveCapacity(ctx context.Context, asker string, req protocol.CapacityRequest) protocol.CapacityAnswer {
	ch := verify.CapacityChallenge{N: req.N, Links: req.Links}
	seed, _ := hex.DecodeString(req.Seed) // Decode checked it
	copy(ch.Seed[:], seed)
	deadline := d.opts.Now().Add(time.Duration(req.DeadlineMillis) * time.Millisecond)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	sol, err := d.opts.Capacity(ctx, ch, func() bool { return ctx.Err() == nil })
	if err != nil {
		d.log.Warn("capacity challenge not answered", "validator", asker, "n", req.N, "links", req.Links, "err", err)
		return protocol.CapacityAnswer{Seed: req.Seed, Error: err.Error()}
	}
	now := d.opts.Now()
	c := &d.capacity
	c.mu.Lock()
	for s, old := range c.solved {
		if now.After(old.until) {
			delete(c.solved, s)
		}
	}
	c.solved[req.Seed] = solvedChallenge{validator: asker, sol: sol, until: now.Add(capacityKeep)}
	c.mu.Unlock()
	return protocol.CapacityAnswer{Seed: req.Seed, Digests: sol.Digests}
}

// spot answers a spot request of the validator that sent the challenge.
func (d *Daemon) spot(asker string, req protocol.SpotRequest) protocol.SpotAnswer {
	c := &d.capacity
	c.mu.Lock()
	s, ok := c.solved[req.Seed]
	c.mu.Unlock()
	if !ok || s.validator != asker || d.opts.Now().After(s.until) {
		return protocol.SpotAnswer{Error: "no answered challenge with that seed from " + asker}
	}
	prev, cur, err := s.sol.SpotLinks(req.Link)
	if err != nil {
		return protocol.SpotAnswer{Error: err.Error()}
	}
	return protocol.SpotAnswer{Prev: prev, Cur: cur}
}

func (d *Daemon) respond(m *nats.Msg, v any) {
	if err := m.Respond(protocol.Encode(v)); err != nil {
		d.log.Warn("reply to capacity request", "err", err)
	}
}
