package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/scheduler"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
)

// SubmitJob validates a consumer's signed job, locks its budget in escrow on chain and,
// once the escrow is committed, stores the inputs sent inline and starts placing the job
// as soon as every input is stored (the rest arrive through UploadInput). Nothing is
// escrowed unless every check passes, and nothing is stored unless the escrow was, or,
// for an Async submission, unless the mempool admitted it (its signature and the
// consumer's balance checked).
func (r *Router) SubmitJob(ctx context.Context, req api.SubmitJobRequest) (api.Job, error) {
	spec := req.Spec
	if err := spec.Validate(); err != nil {
		var fe *api.FieldError
		if errors.As(err, &fe) {
			return api.Job{}, &api.FieldError{Field: "spec." + fe.Field, Msg: fe.Msg}
		}
		return api.Job{}, err
	}
	inline, err := checkInputs(spec, req.InputData)
	if err != nil {
		return api.Job{}, err
	}
	tx, err := checkCreateTx(spec, req.Tx)
	if err != nil {
		return api.Job{}, err
	}
	var acc ledger.Account
	qctx, cancel := context.WithTimeout(ctx, chainReadTimeout)
	err = r.opts.Chain.Query(qctx, "account/"+string(tx.Signer), &acc)
	cancel()
	if err != nil {
		// Nothing was done, and a chain node that did not answer in time (busy, or its
		// peers restarting) mostly answers a moment later: say when to send it again.
		return api.Job{}, api.RetryIn(fmt.Errorf("%w: read consumer account: %v; nothing was escrowed, send the job again", api.ErrUnavailable, err), chainRetry)
	}
	if tx.Body.Seq < acc.Seq {
		if j, err := r.resubmitted(ctx, tx, spec, inline); !errors.Is(err, errNotThisJob) {
			return j, err
		}
	}
	if acc.Balance < spec.Budget {
		return api.Job{}, fmt.Errorf("%w: %s holds %s OMNI but the job's budget is %s OMNI; nothing was escrowed",
			api.ErrInsufficientFunds, tx.Signer, ledger.FormatOMNI(acc.Balance), ledger.FormatOMNI(spec.Budget))
	}
	switch {
	case !req.Async && tx.Body.Seq != acc.Seq:
		return api.Job{}, fmt.Errorf("%w: tx sequence %d, account expects %d (sign with the current sequence)", api.ErrConflict, tx.Body.Seq, acc.Seq)
	case req.Async && (tx.Body.Seq < acc.Seq || tx.Body.Seq-acc.Seq >= ledger.MaxPending):
		return api.Job{}, fmt.Errorf("%w: tx sequence %d, account expects %d to %d (sign with the next sequence)", api.ErrConflict, tx.Body.Seq, acc.Seq, acc.Seq+ledger.MaxPending-1)
	}
	id := ledger.JobID(tx.Signer, tx.Body.Seq)
	j := newJob(id, tx.Signer, spec, r.opts.Now())
	if r.duplicate.Load() {
		return api.Job{}, fmt.Errorf("%w: another process runs this router's key, so this one takes no jobs; nothing was escrowed", api.ErrUnavailable)
	}
	if r.fenced.Load() {
		// Its peers may take over anything it saves, and its job store and blob store do
		// not answer: a job taken now would be refunded, or wait for inputs never stored.
		return api.Job{}, api.RetryIn(fmt.Errorf("%w: this router is cut off from its cluster and has left its jobs to its peers until it is back; nothing was escrowed, send the job through another router, or here again later",
			api.ErrUnavailable), r.opts.LeaseTTL/3)
	}
	r.mu.Lock()
	old, dup := r.jobs[id]
	if dup && !req.Async && old.escrowUnsure() {
		// The account's sequence is still this job's, so the escrow this router looks for
		// has not committed: the job is forgotten within escrowWait unless it does.
		r.mu.Unlock()
		return api.Job{}, api.RetryIn(fmt.Errorf("%w: job %s was saved here before its escrow, which has not committed: the router forgets it within %v unless it does; nothing was escrowed, send the job again then",
			api.ErrTooManyRequests, id, escrowWait), escrowWait/2)
	}
	if dup && !old.escrowRefused() || r.taking[id] {
		r.mu.Unlock()
		return api.Job{}, fmt.Errorf("%w: job %s was already submitted", api.ErrConflict, id)
	}
	if active := r.active; active >= r.opts.MaxActiveJobs {
		r.mu.Unlock()
		return api.Job{}, fmt.Errorf("%w: this router holds %d unfinished jobs, its limit; nothing was escrowed, submit again later", api.ErrTooManyRequests, active)
	}
	unpend := func() {}
	if req.Async {
		// A chain node's mempool admits an escrow only when the committed balance, less
		// what the consumer's txs already waiting spend, covers it (ledger.App.CheckTx);
		// the router also counts what it has admitted, to refuse before broadcasting and
		// say why. Inputs are stored on admission, before the block decides.
		if held := r.pending[tx.Signer]; acc.Balance-spec.Budget < held {
			r.mu.Unlock()
			return api.Job{}, fmt.Errorf("%w: %s holds %s OMNI, of which %s OMNI is promised to escrows still waiting for their block; the job's budget is %s OMNI; nothing was escrowed",
				api.ErrInsufficientFunds, tx.Signer, ledger.FormatOMNI(acc.Balance), ledger.FormatOMNI(held), ledger.FormatOMNI(spec.Budget))
		}
		unpend = r.pendLocked(tx.Signer, spec.Budget)
	}
	// Claimed until tracked: two submissions of one job at once (a client sending again,
	// or a refused sequence signed again twice) would otherwise both be taken, each
	// replacing the other among the router's jobs and both escrows broadcast.
	r.taking[id] = true
	r.mu.Unlock()
	var rev uint64
	if dup {
		// An Async escrow its block refused left the job failed and its sequence unused:
		// the consumer signs again with that sequence, and this submission is the job,
		// its record written over the old one.
		old.saveMu.Lock()
		rev = old.storeRev
		old.saveMu.Unlock()
	}
	r.track(j, rev)
	r.mu.Lock()
	delete(r.taking, id)
	r.mu.Unlock()

	// Saved before the escrow is broadcast, and after every change since, so that a router
	// that dies in between still finds the job when it restarts (adoptJobs asks the chain
	// whether the escrow committed). The first write creates the record: a job id another
	// router already holds is refused here, before anything is escrowed.
	j.set(func(*job) {})
	j.save()
	j.saveMu.Lock()
	stored := j.storeRev != 0 && j.storeRev != rev // written now
	heldBy := j.heldBy
	j.saveMu.Unlock()
	if !stored {
		unpend()
		r.mu.Lock()
		r.dropLocked(j)
		r.mu.Unlock()
		j.cancel()
		if heldBy != "" {
			// The account's sequence is still this job's, so its holder has not escrowed it:
			// it is broadcasting the escrow now (a second router sent the same job), or it
			// saved the record and lost its answer (a partition), and it forgets such a
			// record once it finds no escrow (confirmEscrow). Either way, sending the job
			// again a little later is answered for good.
			return api.Job{}, api.RetryIn(fmt.Errorf("%w: job %s is held by router %s, which has not escrowed it yet: it is escrowing it now, or lost the submission and forgets it within about %v; nothing was escrowed, send the job again then",
				api.ErrTooManyRequests, id, heldBy.Short(), heldRetry), heldRetry/3)
		}
		return api.Job{}, api.RetryIn(fmt.Errorf("%w: the job store did not take job %s; nothing was escrowed, send it again", api.ErrUnavailable, id), time.Second)
	}
	r.holdInline(j, inline)
	if req.Async {
		if ac, ok := r.opts.Chain.(admitter); ok {
			return r.submitAsync(ctx, ac, j, inline, req.Tx, unpend)
		}
	}
	unpend() // answered once its block has committed, as any other
	bctx, cancel := context.WithTimeout(ctx, broadcastTimeout)
	res, err := r.BroadcastTx(bctx, req.Tx)
	cancel()
	if err := r.escrowed(j, inline, res, err, false); err != nil {
		return api.Job{}, err
	}
	return r.submitted(ctx, j), nil
}

// errNotThisJob means a used sequence was not used by the job submitted with it.
var errNotThisJob = errors.New("the sequence escrowed another job")

// resubmitted answers a job sent again once its escrow has committed, as a client that
// lost the answer does, to this router or another: with the job as it reads now, rather
// than a conflict over its sequence that tells the client nothing of it. A job not yet
// placed keeps the inputs it carries (keepInputs). It is errNotThisJob when the chain
// holds no such job.
func (r *Router) resubmitted(ctx context.Context, tx ledger.Tx, spec api.JobSpec, inline [][]byte) (api.Job, error) {
	id := ledger.JobID(tx.Signer, tx.Body.Seq)
	var cj ledger.Job
	qctx, cancel := context.WithTimeout(ctx, chainReadTimeout)
	defer cancel()
	err := r.opts.Chain.Query(qctx, "job/"+id, &cj)
	switch {
	case errors.Is(err, ledger.ErrNotFound), err == nil && (cj.Consumer != tx.Signer || cj.SpecHash != spec.Hash()):
		return api.Job{}, errNotThisJob
	case err != nil:
		return api.Job{}, api.RetryIn(fmt.Errorf("%w: read job %s: %v; nothing was escrowed, send the job again", api.ErrUnavailable, id, err), chainRetry)
	}
	if cj.Status == ledger.JobCreated {
		r.keepInputs(qctx, id, spec, inline)
	}
	v, err := r.Job(qctx, id)
	if errors.Is(err, api.ErrUnavailable) {
		// The job is escrowed and its inputs kept; only how it stands could not be read.
		err = api.RetryIn(fmt.Errorf("%w; job %s is escrowed, and nothing more was: send it again for its status", err, id), chainRetry)
	}
	return v, err
}

// keepInputs stores the inline inputs of a job sent again that its store may lack: its
// first submission's router can die, or be cut off, after broadcasting the escrow and
// before storing them, and the consumer, unanswered, sends the job again elsewhere.
// Stored here, its holder finds them (findStored) rather than refund a job whose
// consumer did send its inputs. They were checked against the spec's digests
// (checkInputs), and a blob is filed under its digest: bytes of the job's own, stored
// again, change nothing.
func (r *Router) keepInputs(ctx context.Context, id string, spec api.JobSpec, inline [][]byte) {
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	if j != nil {
		if n := r.storeInline(j, inline, false); n > 0 {
			j.record("input", "", "", "%d inputs stored from the job sent again", n)
			j.save()
		}
		return
	}
	for i, data := range inline {
		if data == nil {
			continue
		}
		if err := r.blobs.PutHashed(ctx, spec.Inputs[i].Digest, data); err != nil {
			r.log.Debug("input of a job sent again not stored", "job", id, "input", spec.Inputs[i].Name, "err", err)
		}
	}
}

// findStored marks stored the inputs of j that its record does not but the store holds:
// sent again through another router (keepInputs), or stored by a router that died
// before it saved so. A router taking a job up calls it before it refunds the job for
// want of inputs, or waits for them.
func (r *Router) findStored(ctx context.Context, j *job) {
	found := 0
	for i, in := range j.spec.Inputs {
		if j.inputIsStored(i) {
			continue
		}
		has, err := r.blobs.Has(ctx, in.Digest, in.Size)
		if err != nil {
			r.log.Debug("input not looked for", "job", j.id, "input", in.Name, "err", err)
			continue
		}
		if has {
			j.inputStored(i)
			found++
		}
	}
	if found > 0 {
		j.record("input", "", "", "%d inputs found in the store", found)
	}
}

// heldRetry is about how long a router takes to forget the record of a job it lost the
// submission of, once it finds its escrow never committed: a lease renewal for a router
// back from a partition, and escrowWait. (A router that lost only the answer to its
// write finds the record at a rescan, every rescanEvery renewals.)
const heldRetry = 15 * time.Second

// admitter is a Chain that says when the mempool has admitted a relayed tx, before its
// block (chain.Wallet does); an Async submission is answered then. With a Chain that
// cannot, an Async submission is answered once its escrow commits, as any other.
type admitter interface {
	BroadcastTxAdmitted(ctx context.Context, tx []byte, admitted func()) (txHash string, height int64, err error)
}

// submitAsync broadcasts the escrow and answers as soon as the mempool has admitted it;
// the rest of the submission (the block, storing the inline inputs, the start) goes on
// without the consumer, under the job's own context. An escrow refused before the
// mempool took it, or with no answer from the chain, is answered as a synchronous
// submission's would be.
// unpend is called once the escrow's outcome is known.
func (r *Router) submitAsync(ctx context.Context, chain admitter, j *job, inline [][]byte, tx []byte, unpend func()) (api.Job, error) {
	admitted := make(chan struct{})
	type outcome struct {
		res api.BroadcastTxResponse
		err error
	}
	refused := make(chan outcome, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer unpend()
		bctx, cancel := context.WithTimeout(j.ctx, broadcastTimeout)
		defer cancel()
		res, err := broadcastResult(chain.BroadcastTxAdmitted(bctx, tx, func() {
			// Before the consumer hears: a router that dies before the block finds the
			// inputs stored when it (or a peer) takes the job up, and that the consumer
			// holds the job's id (confirmEscrow).
			r.storeInline(j, inline, false)
			j.set(func(j *job) { j.answered = true })
			j.save()
			close(admitted)
		}))
		select {
		case <-admitted: // the consumer has its answer: the outcome is the job's to show
			if j.ctx.Err() == nil { // else the router left the job, to whoever takes it up
				_ = r.escrowed(j, inline, res, err, true)
			}
		default:
			refused <- outcome{res, err}
		}
	}()
	select {
	case <-admitted: // not in a block yet: the chain has nothing to say of the job
		return j.unescrowedView(), nil
	case o := <-refused:
		if err := r.escrowed(j, inline, o.res, o.err, false); err != nil {
			return api.Job{}, err
		}
		return r.submitted(ctx, j), nil
	}
}

// pendLocked counts budget against consumer's balance, as promised to an Async escrow
// waiting for its block, until the returned func is called (once). r.mu must be held.
func (r *Router) pendLocked(consumer keys.Address, budget uint64) (unpend func()) {
	r.pending[consumer] += budget
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.pending[consumer] -= budget; r.pending[consumer] == 0 {
				delete(r.pending, consumer)
			}
		})
	}
}

// escrowed carries a submission on from its escrow's outcome. A committed escrow: the
// inline inputs are stored and the job starts. No answer from the chain: the escrow may
// still commit, and is watched as a restarted router would (confirmEscrow), which refunds
// it with a reason if it does. Refused by the ledger: nothing was escrowed, and the job is
// dropped, or, when its consumer already holds its id (answered: an Async submission),
// failed with the reason. The error is what the consumer is to be told.
func (r *Router) escrowed(j *job, inline [][]byte, res api.BroadcastTxResponse, err error, answered bool) error {
	spec, id := j.spec, j.id
	if errors.Is(err, api.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		r.wg.Add(1)
		go r.confirmEscrow(j)
		return fmt.Errorf("escrow budget: %w (job %s: if the escrow commits after all, the job is refunded in full)", err, id)
	}
	if err != nil && answered {
		msg := fmt.Sprintf("escrow budget: %v; nothing was escrowed", err)
		j.set(func(j *job) { j.errMsg = msg })
		j.record("failed", "", "", "%s", msg)
		r.finish(j)
		return err
	}
	if err != nil {
		r.mu.Lock()
		r.dropLocked(j)
		r.mu.Unlock()
		r.forgetJob(id)
		return fmt.Errorf("escrow budget: %w", err)
	}
	j.set(func(j *job) { j.escrowed = true })
	j.record("escrowed", "create", res.Hash, "%s OMNI locked in escrow", ledger.FormatOMNI(spec.Budget))
	stored := r.storeInline(j, inline, true)
	if missing := j.missingInputs(); len(missing) > 0 {
		j.record("awaiting_inputs", "", "", "waiting for inputs %v to be uploaded", missing)
		if stored < inlineCount(inline) {
			r.wg.Add(1)
			go r.retryInline(j, inline)
		}
	}
	// The escrow and the inputs stored are saved before the consumer hears of them: a
	// restarted router that found the escrow without them would refund the job. An
	// answered Async job was saved with its inputs before its answer, and that the escrow
	// committed is the chain's to tell a restarted router (confirmEscrow): unless an input
	// was stored only now, its change waits for the next save, as any other.
	if !answered || stored > 0 {
		j.save()
	}
	r.wg.Add(1)
	go r.run(j)
	return nil
}

// storeInline stores the inline inputs of j not stored yet and says how many it stored.
// An input that fails to store is tried again for a while (retryInline, from escrowed)
// and can be uploaded meanwhile (UploadInput); when told, the job says so: the escrow
// stands either way. Each input was hashed once, by checkInputs, which found it matches
// the digest in j's spec: it is stored under that digest without being hashed again.
func (r *Router) storeInline(j *job, inline [][]byte, tell bool) (stored int) {
	for i, data := range inline {
		if data == nil || j.inputIsStored(i) {
			continue
		}
		if err := r.blobs.PutHashed(j.ctx, j.spec.Inputs[i].Digest, data); err != nil {
			name := j.spec.Inputs[i].Name
			if !tell { // tried again, or about to be (Async), by a caller that says so
				r.log.Debug("inline input not stored", "job", j.id, "input", name, "err", err)
				continue
			}
			r.log.Warn("inline input not stored", "job", j.id, "input", name, "err", err)
			j.record("awaiting_inputs", "", "", "input %s was not stored (%v); the router tries again, or upload it", name, err)
			continue
		}
		j.inputStored(i)
		stored++
	}
	return stored
}

// inlineCount is how many inputs were sent inline.
func inlineCount(inline [][]byte) (n int) {
	for _, data := range inline {
		if data != nil {
			n++
		}
	}
	return n
}

// Inline inputs the store refused at escrow are tried again, waits doubling from
// inlineRetryFirst to inlineRetryMax, for inlineRetryFor: long enough for a JetStream
// leader election after a partition or a peer's restart, which refuses writes for
// seconds, and short enough that the bytes are not held in memory for long. The consumer,
// whose submission was answered, would otherwise have to upload them again, and one that
// does not leaves its job waiting until its deadline. Variables so tests need not wait.
var (
	inlineRetryFirst = 500 * time.Millisecond
	inlineRetryMax   = 5 * time.Second
	inlineRetryFor   = time.Minute
)

// retryInline stores again the inline inputs of j that its store refused, until all are
// stored (by it or by the consumer's uploads), the router leaves the job, or
// inlineRetryFor passes. It owns a WaitGroup slot.
func (r *Router) retryInline(j *job, inline [][]byte) {
	defer r.wg.Done()
	wait, deadline := inlineRetryFirst, time.Now().Add(inlineRetryFor)
	for {
		var left []string
		for i, data := range inline {
			if data != nil && !j.inputIsStored(i) {
				left = append(left, j.spec.Inputs[i].Name)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.log.Warn("inline inputs still not stored; left to the consumer's upload", "job", j.id, "inputs", left, "tried_for", inlineRetryFor)
			j.record("awaiting_inputs", "", "", "inputs %v could not be stored for %v; upload them again", left, inlineRetryFor)
			return
		}
		select {
		case <-j.ctx.Done():
			return // the router left the job or shut down: its owner takes it up from the store
		case <-time.After(wait):
		}
		wait = min(2*wait, inlineRetryMax)
		if n := r.storeInline(j, inline, false); n > 0 {
			j.record("input", "", "", "%d inline inputs stored on a later try", n)
		}
	}
}

// submitted answers a submission the router took with the job as it reads now; should
// the chain node be slow to answer, with the router's own record of it (a consumer told
// "failed" would not know to follow it).
func (r *Router) submitted(ctx context.Context, j *job) api.Job {
	vctx, cancel := context.WithTimeout(ctx, chainReadTimeout)
	defer cancel()
	if v, err := r.Job(vctx, j.id); err == nil {
		return v
	}
	return j.unescrowedView()
}

// broadcastTimeout bounds the wait for the escrow's block: a chain that answers commits
// it within a few blocks, and one that does not is watched afterwards (confirmEscrow).
const broadcastTimeout = 30 * time.Second

// chainReadTimeout bounds the chain reads a submission waits on before anything is
// escrowed: a router cut off from the chain answers 503 then, not when it is back, with
// a Retry-After of chainRetry (seen in CI's chaos run: a chain node busy as a router died
// took longer than this to answer, and the load, told nothing of when to try again, gave
// up its consumer's last jobs).
const (
	chainReadTimeout = 10 * time.Second
	chainRetry       = 2 * time.Second
)

// UploadInput streams one declared input of an escrowed job into the store, checking it
// against the size and digest the consumer signed; the job is placed once its last input
// is stored. The body is never held whole in memory.
func (r *Router) UploadInput(ctx context.Context, jobID, name string, body io.Reader) error {
	r.mu.Lock()
	j := r.jobs[jobID]
	r.mu.Unlock()
	if j == nil {
		return fmt.Errorf("%w: job %s is not waiting for inputs at this router", api.ErrNotFound, jobID)
	}
	i := slices.IndexFunc(j.spec.Inputs, func(in api.Input) bool { return in.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: job %s declares no input %q", api.ErrNotFound, jobID, name)
	}
	if err := j.startUpload(i); err != nil {
		return err
	}
	in := j.spec.Inputs[i]
	err := r.blobs.PutFrom(ctx, in.Digest, in.Size, body)
	if err != nil {
		j.endUpload(i, false)
		if errors.Is(err, transport.ErrDigestMismatch) {
			return &api.FieldError{Field: "body", Msg: fmt.Sprintf("input %s: %v", name, err)}
		}
		return fmt.Errorf("%w: store input %s: %v", api.ErrUnavailable, name, err)
	}
	j.endUpload(i, true)
	j.record("input", "", "", "input %s stored (%d bytes)", name, in.Size)
	j.save() // before the consumer hears it: a restarted router would wait for the input again
	return nil
}

// checkInputs matches the inputs sent inline to the spec's sizes and digests (a declared
// input may be left out, to be uploaded once the job is escrowed) and, for tensor
// kernels whose operands all came inline, checks that they decode and fit the kernel, so
// a bad job fails before any escrow. The result holds nil for inputs not sent; the rest
// hash to their digests in spec, which storeInline trusts rather than hash them again.
func checkInputs(spec api.JobSpec, data map[string][]byte) ([][]byte, error) {
	out := make([][]byte, len(spec.Inputs))
	all := true
	for i, in := range spec.Inputs {
		b, ok := data[in.Name]
		field := fmt.Sprintf("input_data[%q]", in.Name)
		switch {
		case !ok:
			all = false
			continue
		case int64(len(b)) != in.Size:
			return nil, &api.FieldError{Field: field, Msg: fmt.Sprintf("%d bytes, spec says %d", len(b), in.Size)}
		case api.DigestOf(b) != in.Digest:
			return nil, &api.FieldError{Field: field, Msg: "digest mismatch"}
		}
		out[i] = b
	}
	for name := range data {
		if !slices.ContainsFunc(spec.Inputs, func(in api.Input) bool { return in.Name == name }) {
			return nil, &api.FieldError{Field: fmt.Sprintf("input_data[%q]", name), Msg: "not declared in spec.inputs"}
		}
	}
	if spec.Workload.Kind != api.WorkloadTensor {
		return out, nil
	}
	if !slices.Contains(tensor.Kernels(), spec.Workload.Kernel) {
		return nil, &api.FieldError{Field: "spec.workload.kernel", Msg: fmt.Sprintf("unknown kernel %q (known: %v)", spec.Workload.Kernel, tensor.Kernels())}
	}
	if all {
		if err := checkKernelInputs(spec, out); err != nil {
			return nil, &api.FieldError{Field: "spec.inputs", Msg: err.Error()}
		}
	}
	return out, nil
}

// checkKernelInputs reads a tensor job's inputs as its kernel will (an int8 product's in
// place, without a copy), so that data the kernel cannot take is refused before anything
// is escrowed rather than by the node the job is placed on. A zk job's inputs are the zk package's own (a salted input); its node checks
// them against the job's statement.
func checkKernelInputs(spec api.JobSpec, inputs [][]byte) error {
	var err error
	switch k := spec.Workload.Kernel; {
	case k == tensor.KernelMatMulInt8:
		_, _, err = tensor.ViewMatMulInt8Inputs(inputs)
	case k == tensor.KernelMatMulFloat32:
		_, _, err = tensor.DecodeMatMulFloat32Inputs(inputs)
	case k == tensor.KernelMLPInt8 && spec.Verification != api.VerifyZK:
		_, _, err = tensor.DecodeMLPInt8Inputs(inputs)
	}
	return err
}

// checkCreateTx checks that the signed transaction escrows exactly this spec.
func checkCreateTx(spec api.JobSpec, raw []byte) (ledger.Tx, error) {
	bad := func(format string, args ...any) (ledger.Tx, error) {
		return ledger.Tx{}, &api.FieldError{Field: "tx", Msg: fmt.Sprintf(format, args...)}
	}
	if len(raw) == 0 {
		return bad("the consumer's signed create_job transaction is required")
	}
	tx, err := ledger.DecodeTx(raw)
	if err != nil {
		return bad("%v", err)
	}
	c := tx.Body.CreateJob
	switch {
	case c == nil:
		return bad("must be a create_job transaction, got %s", tx.Body.Kind())
	case c.SpecHash != spec.Hash():
		return bad("commits to spec %s but the submitted spec hashes to %s", c.SpecHash, spec.Hash())
	case c.Budget != spec.Budget || c.MaxPricePerHour != spec.MaxPricePerHour ||
		c.TimeoutSeconds != spec.TimeoutSeconds || c.Verification != spec.Verification:
		return bad("budget, price ceiling, timeout or verification differ from the spec")
	}
	return tx, nil
}

// schedulerJob translates a spec into the scheduler's terms.
func schedulerJob(spec api.JobSpec, exclude []string) scheduler.Job {
	return scheduler.Job{
		GPUs: spec.Resources.Slots(), VRAMMiB: spec.Resources.VRAMMiB,
		MaxPricePerHourUomni: spec.MaxPricePerHour, Region: spec.Placement.Region,
		Origin:           scheduler.Location{LatE6: spec.Placement.LatE6, LonE6: spec.Placement.LonE6},
		MaxLatencyMicros: spec.Placement.MaxLatencyMs * 1000,
		Replicas:         1, Exclude: exclude,
	}
}

// reliabilityBP is a node's verification record as basis points, Laplace-smoothed so a
// new node starts at 50% rather than at either extreme.
func reliabilityBP(n ledger.Node) uint32 {
	return uint32((n.JobsVerified + 1) * 10_000 / (n.JobsVerified + n.JobsFailed + 2))
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }
