package validator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// Proof of capacity, the validator's side: a node's declared rate (Hardware.TFLOPSMilli)
// is what its jobs are billed at and what the router scores it by until a check finds it
// slower, so the validator checks it. When it first sees a node on chain, and then at random times (exponential,
// mean CapacityOptions.Every), it sends the node a chain of dense products
// (verify.CapacityChallenge) sized to take Target at the declared rate, times the answer
// against verify.CapacityDeadline (Slack × that time + Allowance), spot-checks Spots
// links of it and reports the outcome on chain (ledger.MsgCapacityReport): proven, slow
// (late, unanswered or unopened: no slash) or wrong (a spot check failed: a slash). The
// chain acts on a slow or wrong report once more than a third of the validators agree.

// CapacityOptions configure the capacity checker; it is off unless Every > 0.
type CapacityOptions struct {
	// Every is the mean time between two challenges of one node.
	Every time.Duration
	// N is the challenge's matrix size (default protocol.MaxCapacityN, the largest sent
	// inline), Target how long its chain takes at the node's declared rate (default 1 s;
	// the links are at most verify.MaxCapacityLinks, so a very fast claim gets less).
	N      int
	Target time.Duration
	// Slack and Allowance make the deadline: Slack × the time at the declared rate plus
	// Allowance for the network and the request's handling (defaults 4 and 2 s).
	Slack     uint64
	Allowance time.Duration
	// Spots is how many distinct links are spot-checked (default 2).
	Spots int
	// Poll is how often the chain's node list is read (default 5 s).
	Poll time.Duration
	// BlockHash returns a recent block hash, mixed into every seed with the validator's
	// own randomness; nil uses the randomness alone (which the node cannot predict either).
	BlockHash func(ctx context.Context) ([]byte, error)
	// Now and Rand are the checker's clock and randomness (default time.Now and
	// crypto/rand).
	Now  func() time.Time
	Rand io.Reader
}

func (o *CapacityOptions) setDefaults() {
	if o.N <= 0 || o.N > protocol.MaxCapacityN {
		o.N = protocol.MaxCapacityN
	}
	if o.Target <= 0 {
		o.Target = time.Second
	}
	if o.Slack == 0 {
		o.Slack = 4
	}
	if o.Allowance <= 0 {
		o.Allowance = 2 * time.Second
	}
	if o.Spots <= 0 {
		o.Spots = 2
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
}

// capacityProver reaches nodes: over NATS (natsProver), or a fake in tests.
type capacityProver interface {
	Challenge(ctx context.Context, node string, req protocol.CapacityRequest) (protocol.CapacityAnswer, error)
	Spot(ctx context.Context, node string, req protocol.SpotRequest) (protocol.SpotAnswer, error)
}

// natsProver sends to the node's capacity subject under this validator's id.
type natsProver struct {
	conn *nats.Conn
	id   string
}

func (p natsProver) Challenge(ctx context.Context, node string, req protocol.CapacityRequest) (protocol.CapacityAnswer, error) {
	m, err := p.conn.RequestWithContext(ctx, protocol.CapacitySubject(node, p.id), protocol.Encode(req))
	if err != nil {
		return protocol.CapacityAnswer{}, err
	}
	return protocol.Decode[protocol.CapacityAnswer](m.Data)
}

func (p natsProver) Spot(ctx context.Context, node string, req protocol.SpotRequest) (protocol.SpotAnswer, error) {
	m, err := p.conn.RequestWithContext(ctx, protocol.CapacitySubject(node, p.id), protocol.Encode(req))
	if err != nil {
		return protocol.SpotAnswer{}, err
	}
	return protocol.Decode[protocol.SpotAnswer](m.Data)
}

// errUnreachable says a node did not answer at all (it is offline): nothing is reported,
// and it is challenged again later.
var errUnreachable = errors.New("node unreachable")

// runCapacity is the checker's loop; it owns the schedule and ends with ctx. Each
// challenge runs on its own goroutine, one per node at a time. A node is challenged when
// the loop first sees it active on chain (at its registration, or at the validator's
// start), then at exponentially distributed intervals of mean Every; a challenge that
// reported nothing is tried again at the next poll.
func (d *Daemon) runCapacity(ctx context.Context) {
	o := d.opts.Capacity
	var seed [32]byte
	_, _ = io.ReadFull(o.Rand, seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	next := map[keys.Address]time.Time{}
	inFlight := map[keys.Address]bool{}
	type finished struct {
		node     keys.Address
		reported bool
	}
	done := make(chan finished)
	poll := time.NewTicker(o.Poll)
	defer poll.Stop()
	for {
		var nodes []ledger.Node
		if err := d.opts.Chain.Query(ctx, "nodes", &nodes); err != nil && ctx.Err() == nil {
			d.log.Warn("capacity: read nodes", "err", err)
		}
		now := o.Now()
		for _, n := range nodes {
			if n.Status != ledger.NodeActive {
				continue
			}
			if _, seen := next[n.Address]; !seen {
				next[n.Address] = now // newly registered (or newly seen): at once
			}
			if inFlight[n.Address] || now.Before(next[n.Address]) {
				continue
			}
			next[n.Address] = now.Add(time.Duration(rng.ExpFloat64() * float64(o.Every)))
			inFlight[n.Address] = true
			d.capacityChecks.Add(1)
			go func(n ledger.Node) {
				defer d.capacityChecks.Done()
				_, err := d.checkCapacity(ctx, n)
				if err != nil && ctx.Err() == nil {
					d.log.Warn("capacity: not reported", "node", n.Address.Short(), "err", err)
				}
				select {
				case done <- finished{n.Address, err == nil}:
				case <-ctx.Done():
				}
			}(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		case f := <-done:
			delete(inFlight, f.node)
			if !f.reported {
				// Unreachable (a node registers before it serves), or the report failed:
				// try again at the next poll rather than at the next random time.
				next[f.node] = o.Now().Add(o.Poll)
			}
		}
	}
}

// capacityPlan sizes a challenge for a node's declared rate: links enough that the chain
// takes Target at that rate, at least one and at most verify.MaxCapacityLinks.
func capacityPlan(o CapacityOptions, tflopsMilli uint64) (n, links int) {
	perLink := tensor.MatMulOps(o.N, o.N, o.N)
	want := uint64(o.Target.Milliseconds()) * tflopsMilli * 1_000_000 / perLink
	return o.N, int(min(max(want, 1), verify.MaxCapacityLinks))
}

// checkCapacity challenges one node, spot-checks its answer and reports the outcome on
// chain. The report is returned; an error means nothing was reported.
func (d *Daemon) checkCapacity(ctx context.Context, node ledger.Node) (ledger.MsgCapacityReport, error) {
	o := d.opts.Capacity
	ch, err := d.newChallenge(ctx, node)
	if err != nil {
		return ledger.MsgCapacityReport{}, err
	}
	rep, err := d.runChallenge(ctx, node, ch)
	if err != nil {
		return rep, err
	}
	if _, err := d.opts.Chain.Send(ctx, ledger.Msg{CapacityReport: &rep}); err != nil {
		return rep, fmt.Errorf("report: %w", err)
	}
	d.log.Info("capacity reported", "node", node.Address.Short(), "outcome", rep.Outcome, "ops", rep.Ops, "ms", rep.Millis,
		"declared_tflops_milli", node.Hardware.TFLOPSMilli, "n", ch.N, "links", ch.Links, "reason", rep.Reason, "slack", o.Slack)
	return rep, nil
}

// newChallenge draws a challenge for node: its seed is sha256 of a domain, a recent block
// hash and 32 bytes of the validator's randomness, which the node cannot know beforehand.
func (d *Daemon) newChallenge(ctx context.Context, node ledger.Node) (verify.CapacityChallenge, error) {
	o := d.opts.Capacity
	h := sha256.New()
	h.Write([]byte("omnisync/capacity/seed/v1"))
	if o.BlockHash != nil {
		bh, err := o.BlockHash(ctx)
		if err != nil {
			return verify.CapacityChallenge{}, fmt.Errorf("block hash: %w", err)
		}
		h.Write(bh)
	}
	var own [32]byte
	if _, err := io.ReadFull(o.Rand, own[:]); err != nil {
		return verify.CapacityChallenge{}, fmt.Errorf("randomness: %w", err)
	}
	h.Write(own[:])
	h.Write([]byte(node.Address))
	ch := verify.CapacityChallenge{}
	copy(ch.Seed[:], h.Sum(nil))
	ch.N, ch.Links = capacityPlan(o, node.Hardware.TFLOPSMilli)
	return ch, nil
}

// runChallenge sends ch to node, times its answer and spot-checks it.
func (d *Daemon) runChallenge(ctx context.Context, node ledger.Node, ch verify.CapacityChallenge) (ledger.MsgCapacityReport, error) {
	o := d.opts.Capacity
	ops := ch.Ops()
	deadline := verify.CapacityDeadline(ops, node.Hardware.TFLOPSMilli, o.Slack, uint64(o.Allowance.Milliseconds()))
	rep := ledger.MsgCapacityReport{Node: node.Address, Ops: ops}
	slow := func(millis uint64, why string) (ledger.MsgCapacityReport, error) {
		rep.Outcome, rep.Millis, rep.Reason = ledger.CapacitySlow, max(millis, deadline, 1), truncate(why, 256)
		return rep, nil
	}
	seed := hex.EncodeToString(ch.Seed[:])
	req := protocol.CapacityRequest{Node: string(node.Address), Seed: seed, N: ch.N, Links: ch.Links, DeadlineMillis: int64(deadline)}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(deadline)*time.Millisecond)
	began := o.Now()
	ans, err := d.prover.Challenge(cctx, string(node.Address), req)
	elapsed := uint64(max(o.Now().Sub(began).Milliseconds(), 1))
	cancel()
	switch {
	case ctx.Err() != nil:
		return rep, ctx.Err()
	case errors.Is(err, nats.ErrNoResponders):
		return rep, fmt.Errorf("%w: %v", errUnreachable, err)
	case err != nil:
		return slow(elapsed, fmt.Sprintf("no answer within %d ms: %v", deadline, err))
	case ans.Error != "":
		return slow(elapsed, "no answer: "+ans.Error)
	case ans.Seed != seed:
		return slow(elapsed, "answered another challenge")
	case elapsed > deadline:
		return slow(elapsed, fmt.Sprintf("answered in %d ms, deadline %d ms", elapsed, deadline))
	}
	// The links and the Freivalds vectors are drawn now, after the digests came: the node
	// could not know them when it committed to its products.
	var check [32]byte
	if _, err := io.ReadFull(o.Rand, check[:]); err != nil {
		return rep, fmt.Errorf("randomness: %w", err)
	}
	for _, j := range pickLinks(check, ch.Links, o.Spots) {
		spot, err := d.prover.Spot(ctx, string(node.Address), protocol.SpotRequest{Seed: seed, Link: j})
		if err == nil && spot.Error != "" {
			err = errors.New(spot.Error)
		}
		if err != nil {
			return slow(elapsed, fmt.Sprintf("did not open link %d: %v", j, err))
		}
		release, err := d.busy(ctx)
		if err != nil {
			return rep, err
		}
		v, err := verify.CheckCapacityLink(ch, j, ans.Digests, spot.Prev, spot.Cur, check, d.opts.Rounds)
		release()
		if err != nil {
			return rep, fmt.Errorf("check link %d: %w", j, err)
		}
		if !v.OK {
			rep.Outcome, rep.Millis, rep.Reason = ledger.CapacityWrong, elapsed, truncate(v.Reason, 256)
			return rep, nil
		}
	}
	rep.Outcome, rep.Millis = ledger.CapacityProven, elapsed
	rep.Reason = fmt.Sprintf("answered in %d ms, deadline %d ms; links %v checked", elapsed, deadline, pickLinks(check, ch.Links, o.Spots))
	return rep, nil
}

// pickLinks draws min(s, links) distinct links in 1..links from seed.
func pickLinks(seed [32]byte, links, s int) []int {
	rng := mrand.New(mrand.NewChaCha8(seed))
	out := rng.Perm(links)[:min(s, links)]
	for i := range out {
		out[i]++
	}
	return out
}
