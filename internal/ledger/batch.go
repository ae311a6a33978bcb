package ledger

import (
	"fmt"
	"strconv"
)

// Batches let one party act on many jobs in one transaction: the router assigns them
// (MsgAssignJobs), a validator attests them (MsgAttestJobs), a node commits their results
// (MsgCommitResults). Every job needs four transactions in sequence, and a key gets only
// so many into a block; a batch carries up to MaxBatchItems of one kind.
//
// The rule: a batch's items run in order, each exactly as the single message would as
// its own transaction at that point of the block (on the state the items before it
// left), and each applies or fails alone. An item that fails leaves nothing behind but
// its batch_item event, and the items after it still run: one job cancelled meanwhile
// does not cost the others their assignment. So a batch of N items leaves the state N
// single transactions would, less the N-1 extra sequence numbers (TestBatchEqualsSingles).
//
// What fails the whole transaction (it uses no sequence, as any failed tx) is what would
// fail every item alike, checked before any runs: the chain id and sequence, an empty or
// over-long batch, a malformed item (ValidateBasic, naming the item), and a signer
// without the role (an assignment batch from one who is not a router, an attestation
// batch from one who is not an active validator).
//
// How the sender learns what failed: the tx's events hold one batch_item event per item,
// in order, with index, job_id and code (0 when the item applied, else the code the single
// message would have failed with) and, for a failure, log; an applied item's own events
// (job_assigned, attested, job_settled, …) follow its batch_item. BatchResults reads them
// back as errors wrapping the ledger's sentinels.

// MaxBatchItems bounds a batch: about 30 KiB of JSON for the largest items, well inside
// MaxTxBytes, and a bounded share of a block's work for one transaction.
const MaxBatchItems = 256

// MsgAssignJobs is the router's placement of many jobs: each item as MsgAssignJob.
type MsgAssignJobs struct {
	Assignments []MsgAssignJob `json:"assignments"`
}

// MsgAttestJobs is a validator's verdicts on many committed results: each item as
// MsgAttest.
type MsgAttestJobs struct {
	Attestations []MsgAttest `json:"attestations"`
}

// MsgCommitResults is a node's commitments for many jobs: each item as MsgCommitResult.
type MsgCommitResults struct {
	Results []MsgCommitResult `json:"results"`
}

// EventBatchItem is the event type of one item's outcome in a batch.
const EventBatchItem = "batch_item"

// batchItems is a batch's items, each as the single message it stands for; nil for a
// message that is not a batch.
func (m Msg) batchItems() []Msg {
	n := m.batchLen()
	if n == 0 {
		return nil
	}
	items := make([]Msg, n)
	for i := range items {
		items[i] = m.batchItem(i)
	}
	return items
}

// batchLen is how many items a batch holds; 0 for a message that is not a batch.
func (m Msg) batchLen() int {
	switch {
	case m.AssignJobs != nil:
		return len(m.AssignJobs.Assignments)
	case m.AttestJobs != nil:
		return len(m.AttestJobs.Attestations)
	case m.CommitResults != nil:
		return len(m.CommitResults.Results)
	}
	return 0
}

// batchItem is a batch's item i (below batchLen) as the single message it stands for.
// Validation and execution read a batch's items so, one at a time: gathering a batch of
// the most items into batchItems allocated 90 KiB (36 KiB of items, grown by doubling)
// each time a transaction was validated or run, in CheckTx and again in its block.
func (m Msg) batchItem(i int) Msg {
	switch {
	case m.AssignJobs != nil:
		return Msg{AssignJob: &m.AssignJobs.Assignments[i]}
	case m.AttestJobs != nil:
		return Msg{Attest: &m.AttestJobs.Attestations[i]}
	}
	return Msg{CommitResult: &m.CommitResults.Results[i]}
}

// Batch is the batch message that carries items, the inverse of batchItems: ok is false
// unless every item is a single message of one kind that batches (assign_job, attest,
// commit_result), so a sender learns here which of its messages may share a tx.
func Batch(items []Msg) (batch Msg, ok bool) {
	if len(items) == 0 {
		return Msg{}, false
	}
	kind := items[0].Kind()
	for _, it := range items {
		if it.Kind() != kind {
			return Msg{}, false
		}
	}
	switch kind {
	case "assign_job":
		m := &MsgAssignJobs{Assignments: make([]MsgAssignJob, len(items))}
		for i, it := range items {
			m.Assignments[i] = *it.AssignJob
		}
		return Msg{AssignJobs: m}, true
	case "attest":
		m := &MsgAttestJobs{Attestations: make([]MsgAttest, len(items))}
		for i, it := range items {
			m.Attestations[i] = *it.Attest
		}
		return Msg{AttestJobs: m}, true
	case "commit_result":
		m := &MsgCommitResults{Results: make([]MsgCommitResult, len(items))}
		for i, it := range items {
			m.Results[i] = *it.CommitResult
		}
		return Msg{CommitResults: m}, true
	}
	return Msg{}, false
}

// jobID is the job a single job message names.
func (m Msg) jobID() string {
	switch {
	case m.AssignJob != nil:
		return m.AssignJob.JobID
	case m.Attest != nil:
		return m.Attest.JobID
	case m.CommitResult != nil:
		return m.CommitResult.JobID
	}
	return ""
}

// validateBatch checks batch m's length and every item of it.
func validateBatch(m Msg) error {
	n := m.batchLen()
	if n == 0 || n > MaxBatchItems {
		return fmt.Errorf("%w: a batch holds 1 to %d items, this one %d", ErrInvalidMsg, MaxBatchItems, n)
	}
	for i := range n {
		if err := m.batchItem(i).ValidateBasic(); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	return nil
}

// savepointer is a transaction's view of the state that can undo its writes back to a
// savepoint: the journal FinalizeBlock and CheckTx run every transaction over.
type savepointer interface {
	savepoint() int
	rollbackTo(int)
}

// batch runs a batch's items in order, each applying or failing alone (see the rule
// above).
func (c *execCtx) batch(p Params, m Msg) ([]Event, error) {
	if err := c.mayBatch(p, m); err != nil {
		return nil, err
	}
	sp, ok := c.st.kv.(savepointer)
	if !ok {
		return nil, fmt.Errorf("a batch runs over a journal, not a %T", c.st.kv)
	}
	n := m.batchLen()
	events := make([]Event, 0, 3*n)
	for i := range n {
		it := m.batchItem(i)
		mark, supply, validators := sp.savepoint(), c.sp.savepoint(), len(c.valChanged)
		ev, err := c.apply(p, it)
		outcome := Event{Type: EventBatchItem, Attrs: []Attr{
			{"index", strconv.Itoa(i)}, {"job_id", it.jobID()}, {"code", strconv.FormatUint(uint64(CodeFor(err)), 10)},
		}}
		if err != nil {
			sp.rollbackTo(mark)
			c.sp, c.valChanged = supply, c.valChanged[:validators]
			outcome.Attrs = append(outcome.Attrs, Attr{"log", err.Error()})
			events = append(events, outcome)
			continue
		}
		events = append(append(events, outcome), ev...)
	}
	return events, nil
}

// mayBatch refuses a batch whose signer lacks the role every one of its items needs.
func (c *execCtx) mayBatch(p Params, m Msg) error {
	switch {
	case m.AssignJobs != nil:
		if !contains(p.Routers, c.signer) {
			return fmt.Errorf("%w: %s is not a router", ErrUnauthorized, c.signer)
		}
	case m.AttestJobs != nil:
		return c.eligibleSigner(p)
	}
	return nil
}

// savepoint is a copy of the supply to go back to: the Pools map too, once the
// transaction has its own (a borrowed one is copied before it changes).
func (s Supply) savepoint() Supply {
	if !s.poolsShared {
		pools := make(map[string]uint64, len(s.Pools))
		for k, v := range s.Pools { // a copy: the order it is made in does not matter
			pools[k] = v
		}
		s.Pools = pools
	}
	return s
}

// BatchResults reads a batch transaction's per-item outcomes from its events, in item
// order: nil for an item that applied, an error wrapping the ledger's sentinel for one
// that failed. A transaction that is not a batch has none.
func BatchResults(events []Event) ([]error, error) {
	var out []error
	for _, e := range events {
		if e.Type != EventBatchItem {
			continue
		}
		i, err := strconv.Atoi(attr(e, "index"))
		if err != nil || i != len(out) {
			return nil, fmt.Errorf("%w: batch item %q out of order", ErrDecode, attr(e, "index"))
		}
		code, err := strconv.ParseUint(attr(e, "code"), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: batch item %d: code %q", ErrDecode, i, attr(e, "code"))
		}
		out = append(out, ErrorFor(Code(code), attr(e, "log")))
	}
	return out, nil
}
