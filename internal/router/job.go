package router

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/protocol"
)

// job is the router's working record of one job. Only its lifecycle goroutine writes the
// fields below mu's guard (uploads mark their input stored); readers copy them under mu.
// Every change is saved through persist, so a restarted router resumes the job: within
// saveDelay, together with the changes after it, or at once where a restart or a peer
// depends on it (job.save).
type job struct {
	id       string
	owner    keys.Address
	consumer keys.Address
	spec     api.JobSpec
	started  time.Time
	persist  func(j *job, record []byte) // saves the job's record (Router.saveJob), in a buffer it then owns
	resumed  bool                        // a previous router saved it: ask the chain where it stands
	// ctx ends when the router shuts down or another router owns the job now: either way
	// this router leaves the job as it is, for its owner to go on with.
	ctx    context.Context
	cancel context.CancelFunc

	saveMu   sync.Mutex // orders saves: a slow one never overwrites a newer
	savedRev uint64
	storeRev uint64       // the record's revision in the job store; 0 before the first write
	heldBy   keys.Address // the other router whose record a save found in this one's place

	mu        sync.Mutex
	inbox     map[string]chan protocol.Result // by node: the attempts awaiting its report
	logs      map[string]*jobLog              // by node: what it logged of the job (not saved)
	rev       uint64                          // bumped by every change
	saveDue   bool                            // the changes since the last save wait for saveTimer
	saveTimer *time.Timer                     // saves the job saveDelay after the first change it waits for (saveLater)
	changed   chan struct{}                   // closed by the next change, when someone waits for one
	tried     []string                        // nodes that failed the job, not asked again
	silent    []string                        // nodes a dispatch of the job found no one listening on, once (see compute)
	finished  time.Time
	counted   bool          // one of Router.active; guarded by the router's mu, not j.mu
	decidedAt time.Time     // when a reader first found the chain had decided the unfinished job (views.go)
	escrowed  bool          // create_job committed
	answered  bool          // the consumer holds the job's id before its escrow committed (Async)
	unsure    bool          // saved before its escrow, which the router looks for on chain (confirmEscrow)
	stored    []bool        // per input: in the store
	uploading []bool        // per input: an upload is under way
	ready     chan struct{} // closed once every input is stored
	node      string
	scores    *api.Scores
	txs       map[string]string
	events    []api.Event
	attempts  int
	running   bool
	verdict   string
	errMsg    string
	challenge *challengeState // a challenge job's hidden rows, once built (challenge.go)
	// inline is the inputs the consumer sent inline, while kept in memory for the job's
	// dispatches and verification requests to carry (inline.go); nil otherwise.
	inline atomic.Pointer[heldInputs]
	// The record's two largest parts, encoded once (encodeLocked): the spec, which never
	// changes, and events[:encodedN], comma-separated, which only grow.
	specJSON   []byte
	eventsJSON []byte
	encodedN   int
}

func newJob(id string, consumer keys.Address, spec api.JobSpec, started time.Time) *job {
	j := &job{id: id, consumer: consumer, spec: spec,
		started: started, txs: map[string]string{}, ready: make(chan struct{}),
		stored: make([]bool, len(spec.Inputs)), uploading: make([]bool, len(spec.Inputs))}
	if len(spec.Inputs) == 0 {
		close(j.ready)
	}
	return j
}

// jobRecord is what survives a router: everything a restarted router needs to resume the
// job and to keep answering for it.
type jobRecord struct {
	ID string `json:"id"`
	// Owner is the router that runs the job; the others leave it alone while its lease
	// lives (cluster.go).
	Owner    keys.Address      `json:"owner,omitempty"`
	Consumer keys.Address      `json:"consumer"`
	Spec     api.JobSpec       `json:"spec"`
	Started  time.Time         `json:"started"`
	Escrowed bool              `json:"escrowed"`
	Answered bool              `json:"answered,omitempty"` // job.answered
	Stored   []bool            `json:"stored"`
	Tried    []string          `json:"tried,omitempty"`
	Node     string            `json:"node,omitempty"`
	Scores   *api.Scores       `json:"scores,omitempty"`
	Txs      map[string]string `json:"txs,omitempty"`
	Events   []api.Event       `json:"events,omitempty"`
	Attempts int               `json:"attempts,omitempty"`
	Verdict  string            `json:"verdict,omitempty"`
	Error    string            `json:"error,omitempty"`
	Finished time.Time         `json:"finished,omitzero"`
	// Challenge is a challenge job's hidden rows: a secret until the router reveals them,
	// kept here so that a restarted router can.
	Challenge *challengeState `json:"challenge,omitempty"`
}

// snapshot encodes the job's record and the revision it reflects.
func (j *job) snapshot() ([]byte, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.encodeLocked(), j.rev
}

// recordLocked is the job's record; j.mu must be held.
func (j *job) recordLocked() jobRecord {
	return jobRecord{
		ID: j.id, Owner: j.owner, Consumer: j.consumer, Spec: j.spec, Started: j.started, Escrowed: j.escrowed,
		Answered: j.answered, Stored: j.stored, Tried: j.tried, Node: j.node, Scores: j.scores, Txs: j.txs, Events: j.events,
		Attempts: j.attempts, Verdict: j.verdict, Error: j.errMsg, Finished: j.finished,
		Challenge: j.challenge,
	}
}

// encodeLocked encodes the job's record, as json.Marshal(j.recordLocked()) would but for
// the order of its fields: the spec and the events, most of the bytes and all of them at
// every save of a job (3% of a loaded devnet's CPU), are encoded once each and spliced in
// after the rest, which is encoded without reflection (appendRecordFields). j.mu must be
// held.
func (j *job) encodeLocked() []byte {
	return j.appendRecordLocked(nil)
}

// appendRecordLocked appends the job's record, encoded (encodeLocked), to b. j.mu must be
// held.
func (j *job) appendRecordLocked(b []byte) []byte {
	if j.specJSON == nil {
		j.specJSON = mustJSON(j.id, j.spec)
	}
	j.eventsJSONLocked()
	rec := j.recordLocked()
	b = slices.Grow(b, 512+len(j.specJSON)+len(j.eventsJSON))
	b, err := appendRecordFields(append(b, '{'), &rec)
	mustEncode(j.id, err)
	b = append(append(b, `,"spec":`...), j.specJSON...)
	if len(j.events) > 0 {
		b = append(append(append(b, `,"events":[`...), j.eventsJSON...), ']')
	}
	return append(b, '}')
}

// eventsJSONLocked returns the job's events encoded, comma-separated, encoding those
// added since it last did. The bytes returned never change: later events are appended
// after them. j.mu must be held.
func (j *job) eventsJSONLocked() []byte {
	for ; j.encodedN < len(j.events); j.encodedN++ {
		if j.encodedN > 0 {
			j.eventsJSON = append(j.eventsJSON, ',')
		}
		var err error
		j.eventsJSON, err = appendEvent(j.eventsJSON, j.events[j.encodedN])
		mustEncode(j.id, err)
	}
	return j.eventsJSON[:len(j.eventsJSON):len(j.eventsJSON)]
}

// mustJSON encodes v, a part of job id's record: plain types, which cannot fail.
func mustJSON(id string, v any) []byte {
	b, err := json.Marshal(v)
	mustEncode(id, err)
	return b
}

// mustEncode panics on err, from encoding job id's record: its parts are plain types and
// times the router read from its clock or a record, which encode.
func mustEncode(id string, err error) {
	if err != nil {
		panic(fmt.Sprintf("router: encode job %s: %v", id, err))
	}
}

// jobFromRecord rebuilds a job a router saved (this one before a restart, or another).
func jobFromRecord(data []byte) (*job, error) {
	var rec jobRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode job record: %w", err)
	}
	if rec.ID == "" || len(rec.Stored) != len(rec.Spec.Inputs) {
		return nil, fmt.Errorf("job record %q: no id, or %d stored flags for %d inputs", rec.ID, len(rec.Stored), len(rec.Spec.Inputs))
	}
	j := newJob(rec.ID, rec.Consumer, rec.Spec, rec.Started)
	j.owner, j.escrowed, j.answered, j.tried, j.node, j.scores = rec.Owner, rec.Escrowed, rec.Answered, rec.Tried, rec.Node, rec.Scores
	j.events, j.attempts, j.verdict, j.errMsg, j.finished = rec.Events, rec.Attempts, rec.Verdict, rec.Error, rec.Finished
	j.challenge = rec.Challenge
	if rec.Txs != nil {
		j.txs = rec.Txs
	}
	for i, ok := range rec.Stored {
		if ok {
			j.inputStored(i)
		}
	}
	return j, nil
}

// saveDelay is how long a change may wait to be saved, so that the changes a job makes
// close together (a placement and its event, a verdict and its attestation, the last
// events and the end) take one write of the record rather than one each: with hundreds
// of jobs in flight, writing the whole record at every change cost more CPU than
// anything else the router did. A router that dies loses at most this much of a job's
// progress, which the chain holds anyway (a restarted router asks it where each job
// stands); what a restart cannot rebuild from the chain is saved at once (job.save).
// A peer answering for the job from the store is behind by as much.
const saveDelay = time.Second

// save hands the job's latest state to persist now, unless it was saved already. The
// lifecycle calls it where a restarted router or a peer must find a change before this
// one acts on it; set schedules it for every other change.
func (j *job) save() {
	if j.persist == nil {
		return
	}
	j.saveMu.Lock()
	defer j.saveMu.Unlock()
	j.mu.Lock()
	rev := j.rev
	if rev <= j.savedRev {
		j.mu.Unlock()
		return
	}
	if j.saveDue {
		// This write carries the changes the timer waits for. Left running, it would write
		// the next changes early, cutting short the wait that gathers them in one write.
		j.saveDue = false
		j.saveTimer.Stop()
	}
	data := j.appendRecordLocked(recordBuffer())
	j.mu.Unlock()
	j.savedRev = rev
	j.persist(j, data)
}

// recordBufs holds the buffers of records written, for later saves to encode into: a
// record is a few kilobytes, encoded at every save of every job, and allocating each
// anew cost more than encoding it. Router.saveJob hands each back once written (the job
// store's client copies what it sends).
var recordBufs sync.Pool // of *[]byte

// recordBuffer is an empty buffer to encode a record into.
func recordBuffer() []byte {
	if p, ok := recordBufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return nil
}

// releaseRecord hands a record's buffer back for a later save to encode into; nothing
// may use the record after.
func releaseRecord(record []byte) {
	if cap(record) <= 64<<10 { // a record is a few kilobytes: a far larger one is not kept
		recordBufs.Put(&record)
	}
}

// saveLater is the delayed save of the changes set scheduled: it saves them unless a save
// already has (the timer fired as that save stopped it).
func (j *job) saveLater() {
	j.mu.Lock()
	due := j.saveDue
	j.mu.Unlock()
	if due {
		j.save()
	}
}

// startUpload claims input i for one upload: the job must be escrowed and the input
// neither stored nor being uploaded.
func (j *job) startUpload(i int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case !j.escrowed:
		return fmt.Errorf("%w: job %s has no committed escrow yet", api.ErrConflict, j.id)
	case j.stored[i]:
		return fmt.Errorf("%w: input %s of job %s is already stored", api.ErrConflict, j.spec.Inputs[i].Name, j.id)
	case j.uploading[i]:
		return fmt.Errorf("%w: input %s of job %s is being uploaded", api.ErrConflict, j.spec.Inputs[i].Name, j.id)
	}
	j.uploading[i] = true
	return nil
}

func (j *job) endUpload(i int, stored bool) {
	j.mu.Lock()
	j.uploading[i] = false
	j.mu.Unlock()
	if stored {
		j.inputStored(i)
	}
}

// inputStored marks input i stored and releases the job once all are.
func (j *job) inputStored(i int) {
	j.set(func(j *job) {
		if j.stored[i] {
			return
		}
		j.stored[i] = true
		if !slices.Contains(j.stored, false) {
			close(j.ready)
		}
	})
}

// inputIsStored reports whether input i is in the store.
func (j *job) inputIsStored(i int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.stored[i]
}

// missingInputs names the inputs not yet stored.
func (j *job) missingInputs() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	for i, ok := range j.stored {
		if !ok {
			out = append(out, j.spec.Inputs[i].Name)
		}
	}
	return out
}

// record appends a progress event, optionally remembering a tx hash under txKey.
func (j *job) record(stage, txKey, txHash, format string, args ...any) {
	j.set(func(j *job) {
		if txKey != "" && txHash != "" {
			j.txs[txKey] = txHash
		}
		j.events = append(j.events, api.Event{Time: time.Now().UTC(), Stage: stage, Message: fmt.Sprintf(format, args...)})
	})
}

// lastEvent is the message of the job's latest event of stage, or "".
func (j *job) lastEvent(stage string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	for i := len(j.events) - 1; i >= 0; i-- {
		if j.events[i].Stage == stage {
			return j.events[i].Message
		}
	}
	return ""
}

// set applies a change, tells whoever waits for one, and saves the job within
// saveDelay, with whatever changes come meanwhile.
func (j *job) set(f func(j *job)) {
	j.mu.Lock()
	f(j)
	j.rev++
	if j.changed != nil {
		close(j.changed)
		j.changed = nil
	}
	if j.persist != nil && !j.saveDue {
		j.saveDue = true
		if j.saveTimer == nil {
			j.saveTimer = time.AfterFunc(saveDelay, j.saveLater)
		} else {
			j.saveTimer.Reset(saveDelay)
		}
	}
	j.mu.Unlock()
}

// changes returns a channel closed at the job's next change.
func (j *job) changes() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.changed == nil {
		j.changed = make(chan struct{})
	}
	return j.changed
}

// JobChanges returns a channel closed at the next change this router makes to the job (an
// event, a placement, a verdict: what Job shows), or nil when the router does not run the
// job (a peer does, or it is forgotten). The event stream of GET /v1/jobs/{id}/events
// waits on it rather than polling (httpapi.JobWatcher). A change another party makes on
// chain closes nothing until this router records it.
func (r *Router) JobChanges(id string) <-chan struct{} {
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	if j == nil {
		return nil
	}
	return j.changes()
}

// listen opens the inbox for node's report on the job, for one attempt, until stop.
func (j *job) listen(node string) (reports <-chan protocol.Result, stop func()) {
	ch := make(chan protocol.Result, 2)
	j.mu.Lock()
	if j.inbox == nil {
		j.inbox = map[string]chan protocol.Result{}
	}
	j.inbox[node] = ch
	j.mu.Unlock()
	return ch, func() {
		j.mu.Lock()
		if j.inbox[node] == ch {
			delete(j.inbox, node)
		}
		j.mu.Unlock()
	}
}

// deliver hands a node's report to the attempt awaiting it; false when none is (a late
// report from an attempt already given up, or a duplicate).
func (j *job) deliver(res protocol.Result) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case j.inbox[res.NodeID] <- res:
		return true
	default:
		return false
	}
}
