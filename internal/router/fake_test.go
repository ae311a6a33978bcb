package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// fakeChain is a test stand-in for the settlement layer: it keeps jobs, nodes and
// validators in memory and applies the few messages the router sends.
type fakeChain struct {
	mu     sync.Mutex
	params ledger.Params
	nodes  map[keys.Address]ledger.Node
	// nodeWrites counts the writes of node records, which stand for the chain's heights in
	// nodes_since; nodeWritten is each node's last.
	nodeWrites  int64
	nodeWritten map[keys.Address]int64
	vals        []ledger.Validator
	jobs        map[string]*ledger.Job
	balances    map[keys.Address]uint64
	seqs        map[keys.Address]uint64 // the next sequence of each account: one past its create_jobs
	creates     int                     // create_job txs broadcast
	assigned    []keys.Address          // every node an AssignJob named, in order
	batches     []int                   // the size of every assign_jobs batch, in order
	// rejectCreate, when set, is the ledger's answer to every create_job.
	rejectCreate error
	// loseCreateAnswer commits every create_job but answers the broadcast with a
	// transport error, as a chain node cut off mid-request does.
	loseCreateAnswer bool
	// accountsDown, when set, fails every read of an account, as a chain node that does
	// not answer in time does.
	accountsDown bool
}

func newFakeChain() *fakeChain {
	return &fakeChain{
		params: ledger.DefaultParams(), nodes: map[keys.Address]ledger.Node{}, nodeWritten: map[keys.Address]int64{},
		jobs: map[string]*ledger.Job{}, balances: map[keys.Address]uint64{}, seqs: map[keys.Address]uint64{},
	}
}

func (f *fakeChain) addNode(addr keys.Address, price, tflopsMilli uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putNodeLocked(ledger.Node{
		Address: addr, Stake: f.params.MinNodeStake, PricePerHour: price, Status: ledger.NodeActive,
		Hardware: ledger.Hardware{GPUModel: "test", GPUs: 1, VRAMMiB: 16_384, TFLOPSMilli: tflopsMilli},
	})
}

// putNodeLocked writes a node's record, as a block would; f.mu must be held.
func (f *fakeChain) putNodeLocked(n ledger.Node) {
	f.nodeWrites++
	f.nodes[n.Address], f.nodeWritten[n.Address] = n, f.nodeWrites
}

func (f *fakeChain) Send(_ context.Context, msg ledger.Msg) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a := msg.AssignJob; a != nil {
		if err := f.assignLocked(a); err != nil {
			return "", err
		}
		return fmt.Sprintf("ASSIGN-%d", len(f.assigned)), nil
	}
	if c := msg.CancelJob; c != nil {
		j, ok := f.jobs[c.JobID]
		if !ok || (j.Status != ledger.JobCreated && j.Status != ledger.JobAssigned) {
			return "", fmt.Errorf("%w: job %s cannot be cancelled", ledger.ErrBadState, c.JobID)
		}
		j.Status = ledger.JobCancelled
		return "CANCEL-" + c.JobID, nil
	}
	return "", fmt.Errorf("fake chain: unexpected %s", msg.Kind())
}

func (f *fakeChain) assignLocked(a *ledger.MsgAssignJob) error {
	j, ok := f.jobs[a.JobID]
	if !ok {
		return fmt.Errorf("%w: job %s", ledger.ErrNotFound, a.JobID)
	}
	if j.Status != ledger.JobCreated && j.Status != ledger.JobAssigned {
		return fmt.Errorf("%w: job %s is %s, cannot be assigned", ledger.ErrBadState, j.ID, j.Status)
	}
	j.Status, j.Node = ledger.JobAssigned, a.Node
	if a.Challenge != "" {
		j.Challenge = a.Challenge
	}
	f.assigned = append(f.assigned, a.Node)
	return nil
}

// SendBatch applies a batch as the ledger does: each item alone, in order.
func (f *fakeChain) SendBatch(_ context.Context, msg ledger.Msg) (string, []error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg.AssignJobs == nil {
		return "", nil, fmt.Errorf("fake chain: unexpected %s", msg.Kind())
	}
	f.batches = append(f.batches, len(msg.AssignJobs.Assignments))
	var items []error
	for i := range msg.AssignJobs.Assignments {
		items = append(items, f.assignLocked(&msg.AssignJobs.Assignments[i]))
	}
	return fmt.Sprintf("ASSIGN-BATCH-%d", len(f.batches)), items, nil
}

func (f *fakeChain) BroadcastTx(_ context.Context, raw []byte) (string, int64, error) {
	tx, err := ledger.DecodeTx(raw)
	if err != nil {
		return "", 0, err
	}
	c := tx.Body.CreateJob
	if c == nil {
		return "", 0, fmt.Errorf("fake chain: unexpected %s", tx.Body.Kind())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rejectCreate != nil {
		return "", 0, f.rejectCreate
	}
	id := ledger.JobID(tx.Signer, tx.Body.Seq)
	f.creates++
	f.jobs[id] = &ledger.Job{ID: id, Consumer: tx.Signer, SpecHash: c.SpecHash, Budget: c.Budget, Status: ledger.JobCreated}
	f.seqs[tx.Signer] = tx.Body.Seq + 1
	if f.loseCreateAnswer {
		return "", 0, errors.New("post failed: connection reset by peer")
	}
	return "CREATE", 7, nil
}

func (f *fakeChain) Query(_ context.Context, path string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind, arg, _ := strings.Cut(path, "/")
	var out any
	switch kind {
	case "account":
		if f.accountsDown {
			return fmt.Errorf("%w: abci info: post failed: context deadline exceeded", api.ErrUnavailable)
		}
		out = ledger.Account{Address: keys.Address(arg), Balance: f.balances[keys.Address(arg)], Seq: f.seqs[keys.Address(arg)]}
	case "node":
		n, ok := f.nodes[keys.Address(arg)]
		if !ok {
			return fmt.Errorf("%w: node %s", ledger.ErrNotFound, arg)
		}
		out = n
	case "nodes":
		list := []ledger.Node{}
		for _, n := range f.nodes {
			list = append(list, n)
		}
		out = list
	case "nodes_since": // as the ledger answers it, heights being node writes
		since, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			return err
		}
		ns := ledger.NodesSince{Height: f.nodeWrites, Full: since == 0 || since > f.nodeWrites, Nodes: []ledger.Node{}}
		for a, n := range f.nodes {
			if ns.Full || f.nodeWritten[a] > since {
				ns.Nodes = append(ns.Nodes, n)
			}
		}
		out = ns
	case "validators":
		out = f.vals
	case "params":
		out = f.params
	case "job":
		j, ok := f.jobs[arg]
		if !ok {
			return fmt.Errorf("%w: job %s", ledger.ErrNotFound, arg)
		}
		out = *j
	default:
		return fmt.Errorf("fake chain: no query %q", path)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (f *fakeChain) assignments() []keys.Address {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]keys.Address(nil), f.assigned...)
}

// setNodeStatus changes a node's standing, as a slash or an unbond would.
func (f *fakeChain) setNodeStatus(addr keys.Address, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nodes[addr]
	n.Status = status
	f.putNodeLocked(n)
}
