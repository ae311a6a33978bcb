package devnet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
	"github.com/omnisync/omnisync/internal/tensor"
)

// The Byzantine simulation's nodes run the project's node daemon; what lies is what an
// operator controls: the runtime that computes, the container runtime, and the messages
// the daemon hands the chain. A player wraps all three and behaves as its strategy says.

// strategy is how a player behaves in the current row of the simulation.
type strategy int32

const (
	playHonest   strategy = iota
	playLazy              // returns random output, computing nothing
	playSubtle            // computes, then changes one element
	playCopycat           // copies another node's result instead of computing
	playOverbill          // computes honestly and reports 2^62 ms of GPU time
	playColluder          // the subtle lie, identical to its partner's: two replicas agree on it
	// playSubtleRow0 computes, then changes the first element of row 0. Of a challenge
	// job's output C' that row is a challenge row or a real one, as the router drew.
	playSubtleRow0
)

// board is what the players share: the last output an honest player computed (the
// copycat's source), the GPU time an over-biller really used and the truth of every run,
// by job.
type board struct {
	mu         sync.Mutex
	latest     []byte
	realMillis map[string]uint64
	truths     map[string]truth
}

// truth is what a player's run of a job should have returned, and how what it returned
// differs from that.
type truth struct {
	digest string // of the product of the inputs the node was given: C' for a challenge job
	// wrongRows are the rows of the returned output that differ from the product: all of
	// them when its shape differs.
	wrongRows []uint32
}

func (b *board) recordTruth(jobID string, right, returned []byte) {
	tr := truth{digest: api.DigestOf(right), wrongRows: differingRows(right, returned)}
	b.mu.Lock()
	b.truths[jobID] = tr
	b.mu.Unlock()
}

func (b *board) truth(jobID string) (truth, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tr, ok := b.truths[jobID]
	return tr, ok
}

// differingRows lists the rows in which returned, a product's output, differs from right.
func differingRows(right, returned []byte) []uint32 {
	want, err := tensor.DecodeInt32(right)
	if err != nil {
		return nil
	}
	got, err := tensor.DecodeInt32(returned)
	var rows []uint32
	for i := range want.Rows {
		row := want.Data[i*want.Cols:][:want.Cols]
		if err != nil || got.Rows != want.Rows || got.Cols != want.Cols || !slices.Equal(got.Data[i*got.Cols:][:got.Cols], row) {
			rows = append(rows, uint32(i))
		}
	}
	return rows
}

func (b *board) post(out []byte) {
	b.mu.Lock()
	b.latest = out
	b.mu.Unlock()
}

func (b *board) lastOutput() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.latest
}

func (b *board) recordMillis(jobID string, ms uint64) {
	b.mu.Lock()
	b.realMillis[jobID] = ms
	b.mu.Unlock()
}

func (b *board) millis(jobID string) (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ms, ok := b.realMillis[jobID]
	return ms, ok
}

// player is one simulated node's behaviour; the devnet's NodeOptions seam installs it.
type player struct {
	region string // declared at registration: how the simulation steers jobs to it
	addr   keys.Address
	play   atomic.Int32
	board  *board
}

func (p *player) set(s strategy)     { p.play.Store(int32(s)) }
func (p *player) strategy() strategy { return strategy(p.play.Load()) }

// install makes o's daemon play p: its tensor runtime, container runtime and chain.
func (p *player) install(o *node.Options) {
	p.addr = keys.AddressOfKey(o.Key)
	o.Hardware.Region = p.region
	o.Runtime = playerRuntime{p: p}
	o.Chain = playerChain{p: p, Chain: o.Chain}
	if o.Containers != nil {
		o.Containers = playerContainers{p: p, Container: o.Containers}
	}
}

// playerRuntime is a player's tensor runtime.
type playerRuntime struct {
	p      *player
	native runtime.Native
}

func (playerRuntime) Name() string { return "byzantine" }

// Run computes the task, as every player does so that the board holds the truth, and
// returns what the player's strategy makes of it.
func (r playerRuntime) Run(ctx context.Context, t runtime.Task) (runtime.Result, error) {
	honest, err := r.native.Run(ctx, t)
	if err != nil {
		return honest, err
	}
	res, err := r.play(t, honest)
	if err == nil {
		r.p.board.recordTruth(t.JobID, honest.Output, res.Output)
	}
	return res, err
}

func (r playerRuntime) play(t runtime.Task, honest runtime.Result) (runtime.Result, error) {
	switch r.p.strategy() {
	case playLazy:
		return randomProduct(t)
	case playCopycat:
		if out := r.p.board.lastOutput(); out != nil {
			return runtime.Result{Output: out, GPUMillis: 1}, nil
		}
		return randomProduct(t)
	case playSubtle, playColluder:
		return changeElement(honest, func(n int) int { return n/2 + 7 })
	case playSubtleRow0:
		return changeElement(honest, func(int) int { return 0 })
	case playOverbill:
		r.p.board.recordMillis(t.JobID, honest.GPUMillis)
		honest.GPUMillis = 1 << 62
		return honest, nil
	}
	r.p.board.post(honest.Output)
	return honest, nil
}

// changeElement adds one to an element of a product's output: the one at index(n) of its
// n elements, row-major.
func changeElement(res runtime.Result, index func(n int) int) (runtime.Result, error) {
	c, err := tensor.DecodeInt32(res.Output)
	if err != nil {
		return res, err
	}
	c.Data[index(len(c.Data))]++
	res.Output, err = c.MarshalBinary()
	return res, err
}

// randomProduct is a lazy node's output: a matrix of the product's shape, filled with
// random numbers seeded by the job id.
func randomProduct(t runtime.Task) (runtime.Result, error) {
	a, b, err := tensor.DecodeMatMulInt8Inputs(t.Inputs)
	if err != nil {
		return runtime.Result{}, err
	}
	c, err := tensor.NewInt32(a.Rows, b.Cols)
	if err != nil {
		return runtime.Result{}, err
	}
	rng := rand.New(rand.NewChaCha8(sha256.Sum256([]byte(t.JobID))))
	for i := range c.Data {
		c.Data[i] = rng.Int32()
	}
	out, err := c.MarshalBinary()
	return runtime.Result{Output: out, GPUMillis: 1}, err
}

// playerContainers is a player's container runtime.
type playerContainers struct {
	p *player
	runtime.Container
}

func (c playerContainers) RunContainer(ctx context.Context, t runtime.ContainerTask) (runtime.ContainerResult, error) {
	switch c.p.strategy() {
	case playLazy:
		junk := make([]byte, 32)
		rng := rand.New(rand.NewChaCha8(sha256.Sum256([]byte(t.JobID))))
		for i := range junk {
			junk[i] = byte('a' + rng.IntN(26))
		}
		return runtime.ContainerResult{Outputs: []jobio.Output{output("summary.txt", junk)}, Elapsed: time.Millisecond}, nil
	case playSubtle, playColluder:
		res, err := c.Container.RunContainer(ctx, t)
		if err != nil || len(res.Outputs) == 0 {
			return res, err
		}
		o := res.Outputs[0]
		res.Outputs[0] = output(o.Path, append(append([]byte{}, o.Data...), " (and one more)"...))
		return res, nil
	}
	return c.Container.RunContainer(ctx, t)
}

func output(path string, data []byte) jobio.Output {
	sum := sha256.Sum256(data)
	return jobio.Output{Path: path, Data: data, SHA256: fmt.Sprintf("%x", sum)}
}

// playerChain is what a player's daemon sends the chain. A copycat replaces a redundant
// job's seal with another replica's, and its reveal with another replica's digest.
type playerChain struct {
	p *player
	node.Chain
}

func (c playerChain) Send(ctx context.Context, msg ledger.Msg) (string, error) {
	if c.p.strategy() == playCopycat {
		if m := msg.CommitResult; m != nil {
			copied, err := c.copySeal(ctx, *m)
			if err != nil {
				return "", err
			}
			msg.CommitResult = &copied
		}
		if m := msg.RevealResult; m != nil {
			copied := *m
			digest, err := c.copyReplica(ctx, m.JobID, func(r ledger.Replica) string { return r.ResultDigest })
			if err != nil {
				return "", err
			}
			copied.ResultDigest, msg.RevealResult = digest, &copied
		}
	}
	return c.Chain.Send(ctx, msg)
}

// batchSender is a chain that takes batch messages (ledger.MsgCommitResults).
type batchSender interface {
	SendBatch(ctx context.Context, msg ledger.Msg) (string, []error, error)
}

// SendBatch is Send for a batch of commitments, each sealed one copied by a copycat.
func (c playerChain) SendBatch(ctx context.Context, msg ledger.Msg) (string, []error, error) {
	b, ok := c.Chain.(batchSender)
	if !ok {
		return "", nil, fmt.Errorf("%T sends no batches", c.Chain)
	}
	if m := msg.CommitResults; m != nil && c.p.strategy() == playCopycat {
		copied := ledger.MsgCommitResults{Results: make([]ledger.MsgCommitResult, len(m.Results))}
		for i, r := range m.Results {
			var err error
			if copied.Results[i], err = c.copySeal(ctx, r); err != nil {
				return "", nil, err
			}
		}
		msg.CommitResults = &copied
	}
	return b.SendBatch(ctx, msg)
}

// copySeal puts another replica's seal in place of a redundant job's own.
func (c playerChain) copySeal(ctx context.Context, m ledger.MsgCommitResult) (ledger.MsgCommitResult, error) {
	if m.Seal == "" {
		return m, nil
	}
	seal, err := c.copyReplica(ctx, m.JobID, func(r ledger.Replica) string { return r.Seal })
	m.Seal = seal
	return m, err
}

// copyReplica waits until another replica of the job shows field on chain and returns it.
func (c playerChain) copyReplica(ctx context.Context, jobID string, field func(ledger.Replica) string) (string, error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		var j ledger.Job
		if err := c.Chain.Query(ctx, "job/"+jobID, &j); err == nil {
			for _, r := range j.Replicas {
				if v := field(r); r.Node != c.p.addr && v != "" {
					return v, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}
