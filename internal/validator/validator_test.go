package validator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/runtime/jobio"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
	"github.com/omnisync/omnisync/internal/verify"
)

// fakeChain serves job records and records attestations, refusing those the ledger
// would refuse without state and those of the jobs in refuse.
type fakeChain struct {
	mu      sync.Mutex
	job     ledger.Job
	others  map[string]ledger.Job // more jobs, by id, for the batching test
	refuse  map[string]bool       // jobs whose attestation the chain refuses (settled meanwhile)
	attests []ledger.MsgAttest
	batches []int         // the size of every attest_jobs batch, in order
	delay   time.Duration // how long an attestation takes to commit
	audits  []ledger.AttestationAudit
	reports []ledger.MsgReportAttestation
}

func (f *fakeChain) Send(_ context.Context, m ledger.Msg) (string, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := m.ReportAttestation; r != nil {
		if err := m.ValidateBasic(); err != nil {
			return "", err
		}
		f.reports = append(f.reports, *r)
		return "REPORT", nil
	}
	if m.Attest == nil {
		return "", fmt.Errorf("unexpected %s", m.Kind())
	}
	if err := f.attestLocked(m); err != nil {
		return "", err
	}
	return "ATTEST", nil
}

// SendBatch applies a batch as the ledger does: each item alone, in order.
func (f *fakeChain) SendBatch(_ context.Context, m ledger.Msg) (string, []error, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.AttestJobs == nil {
		return "", nil, fmt.Errorf("unexpected %s", m.Kind())
	}
	f.batches = append(f.batches, len(m.AttestJobs.Attestations))
	var items []error
	for i := range m.AttestJobs.Attestations {
		items = append(items, f.attestLocked(ledger.Msg{Attest: &m.AttestJobs.Attestations[i]}))
	}
	return fmt.Sprintf("ATTEST-BATCH-%d", len(f.batches)), items, nil
}

func (f *fakeChain) attestLocked(m ledger.Msg) error {
	if err := m.ValidateBasic(); err != nil {
		return err
	}
	if f.refuse[m.Attest.JobID] {
		return fmt.Errorf("%w: job %s is settled, not awaiting verification", ledger.ErrBadState, m.Attest.JobID)
	}
	f.attests = append(f.attests, *m.Attest)
	return nil
}

func (f *fakeChain) Query(_ context.Context, path string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if path == "attestation_audits" {
		b, _ := json.Marshal(f.audits)
		return json.Unmarshal(b, v)
	}
	job, ok := f.others[strings.TrimPrefix(path, "job/")]
	if path == "job/"+f.job.ID {
		job, ok = f.job, true
	}
	if !ok {
		return fmt.Errorf("%w: %s", ledger.ErrNotFound, path)
	}
	b, _ := json.Marshal(job)
	return json.Unmarshal(b, v)
}

type rig struct {
	router *nats.Conn
	js     jetstream.JetStream
	chain  *fakeChain
	id     string
	grants *transport.Grants
	spec   api.JobSpec
	a, b   *tensor.Int8Matrix
	reg    *prometheus.Registry // the validator's metrics
	daemon *Daemon
}

// newRig starts a NATS server, a validator, and stores a job's inputs; the job's
// committed output is set by each test. Everything stored is granted to the validator,
// as the router grants a job's inputs and output to its committee.
func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigWith(t, nil)
}

// newRigWith is newRig with the validator's options changed by set.
func newRigWith(t *testing.T, set func(*Options)) *rig {
	t.Helper()
	valKey := transporttest.Key(t)
	valID := string(keys.AddressOfKey(valKey))
	n := transporttest.Start(t, valKey)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := &rig{router: n.Admin, js: n.JS, grants: n.Grants, chain: &fakeChain{}, id: valID, reg: metrics.NewRegistry()}
	r.a, _ = tensor.RandomInt8(32, 16, 1)
	r.b, _ = tensor.RandomInt8(16, 8, 2)
	var inputs []api.Input
	for i, m := range []*tensor.Int8Matrix{r.a, r.b} {
		data, _ := m.MarshalBinary()
		d := r.put(t, data)
		inputs = append(inputs, api.Input{Name: string(rune('a' + i)), Digest: d, Size: int64(len(data))})
	}
	r.spec = api.JobSpec{Workload: api.Workload{Kind: api.WorkloadTensor, Kernel: tensor.KernelMatMulInt8}, Inputs: inputs}
	r.chain.job = ledger.Job{ID: "job-00000000000000aa", Status: ledger.JobComputed, SpecHash: r.spec.Hash(), Seed: strings.Repeat("ab", 32)}
	opts := Options{Key: valKey, RouterURL: n.Server.WebSocketURL(), RootCAs: n.Roots, Chain: r.chain, Heartbeat: time.Second, Metrics: r.reg,
		OutputPatience: time.Nanosecond} // a missing output is looked for once, unless a test says otherwise
	if set != nil {
		set(&opts)
	}
	v, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	r.daemon = v
	return r
}

func (r *rig) put(t *testing.T, data []byte) string {
	t.Helper()
	d, err := transport.PutBlob(context.Background(), r.js, protocol.BlobBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	r.grants.AllowRead(r.id, d)
	return d
}

func (r *rig) commitOutput(t *testing.T, c *tensor.Int32Matrix) {
	t.Helper()
	data, _ := c.MarshalBinary()
	r.chain.mu.Lock()
	r.chain.job.ResultDigest = r.put(t, data)
	r.chain.mu.Unlock()
}

func (r *rig) verify(t *testing.T, spec api.JobSpec) protocol.Verdict {
	t.Helper()
	v, err := r.request(r.chain.job.ID, spec)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// request asks the validator to verify a job, as the router does.
func (r *rig) request(jobID string, spec api.JobSpec) (protocol.Verdict, error) {
	return r.requestCarrying(jobID, spec, nil)
}

// requestCarrying is request with carried as the request's inline inputs.
func (r *rig) requestCarrying(jobID string, spec api.JobSpec, carried [][]byte) (protocol.Verdict, error) {
	msg, err := r.router.Request(protocol.VerifySubject(r.id), protocol.Encode(protocol.VerifyRequest{JobID: jobID, Router: "router", Spec: spec, Inputs: carried}), 10*time.Second)
	if err != nil {
		return protocol.Verdict{}, err
	}
	return protocol.Decode[protocol.Verdict](msg.Data)
}

// A validator checks with the inputs the request carries when they match the spec's
// digests, and fetches those that do not: a router that carries a wrong input neither
// gets an honest node's result failed nor a dishonest one passed.
func TestCarriedInputsAreUsedOnlyWhenTheyMatch(t *testing.T) {
	r := newRig(t)
	bData, _ := r.b.MarshalBinary()
	other, _ := tensor.RandomInt8(32, 16, 9) // of a's size
	otherData, _ := other.MarshalBinary()

	honest, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, honest)
	if v, err := r.requestCarrying(r.chain.job.ID, r.spec, [][]byte{otherData, bData}); err != nil || !v.Pass {
		t.Fatalf("an honest output, a wrong input carried: %+v, %v; want it passed", v, err)
	}
	onOther, _ := tensor.MatMulInt8(other, r.b)
	r.commitOutput(t, onOther)
	if v, err := r.requestCarrying(r.chain.job.ID, r.spec, [][]byte{otherData, bData}); err != nil || v.Pass {
		t.Fatalf("an output of the wrong input, carried: %+v, %v; want it failed", v, err)
	}

	// Inputs never stored, so that only the ones carried can be checked with.
	a2, _ := tensor.RandomInt8(8, 8, 11)
	b2, _ := tensor.RandomInt8(8, 8, 12)
	a2Data, _ := a2.MarshalBinary()
	b2Data, _ := b2.MarshalBinary()
	spec := api.JobSpec{Workload: r.spec.Workload, Inputs: []api.Input{
		{Name: "a", Digest: api.DigestOf(a2Data), Size: int64(len(a2Data))},
		{Name: "b", Digest: api.DigestOf(b2Data), Size: int64(len(b2Data))},
	}}
	r.chain.mu.Lock()
	r.chain.job.SpecHash = spec.Hash()
	r.chain.mu.Unlock()
	c2, _ := tensor.MatMulInt8(a2, b2)
	r.commitOutput(t, c2)
	if v, err := r.requestCarrying(r.chain.job.ID, spec, [][]byte{a2Data, b2Data}); err != nil || !v.Pass {
		t.Fatalf("inputs carried and not stored: %+v, %v; want the job passed with them", v, err)
	}
	if v, err := r.request(r.chain.job.ID, spec); err != nil || v.Pass {
		t.Fatalf("the same inputs neither carried nor stored: %+v, %v; want no pass", v, err)
	}
}

func TestHonestProductPasses(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	v := r.verify(t, r.spec)
	if !v.Pass || v.AttestTx == "" || len(r.chain.attests) != 1 || !r.chain.attests[0].Pass {
		t.Fatalf("verdict %+v, attests %+v", v, r.chain.attests)
	}
	if r.chain.attests[0].ResultDigest != r.chain.job.ResultDigest {
		t.Fatal("attested a digest other than the committed one")
	}
	// The 32×16 by 16×8 product is 2·32·16·8 operations: what the node is billed for.
	if got := r.chain.attests[0].Ops; got != 8192 {
		t.Fatalf("attested %d operations, want 8192", got)
	}
}

func TestTamperedProductFails(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	c.Data[len(c.Data)-1] ^= 1
	r.commitOutput(t, c)
	v := r.verify(t, r.spec)
	if v.Pass || v.Error != "" || len(r.chain.attests) != 1 || r.chain.attests[0].Pass {
		t.Fatalf("verdict %+v, attests %+v: want a failing attestation", v, r.chain.attests)
	}
}

func TestSpecThatDoesNotMatchTheCommitmentIsRefused(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	altered := r.spec
	altered.Inputs = append([]api.Input{}, r.spec.Inputs...)
	altered.Inputs[0].Name = "swapped"
	v := r.verify(t, altered)
	if v.Error == "" || !strings.Contains(v.Error, "committed") || len(r.chain.attests) != 0 {
		t.Fatalf("verdict %+v, attests %d: a spec the consumer did not sign must not be attested", v, len(r.chain.attests))
	}
}

// An output not found at once is looked for again: a router's cluster copies a blob to
// the server the validator asks in its own time, and an honest node must not fail for it.
func TestOutputFoundLateIsChecked(t *testing.T) {
	r := newRigWith(t, func(o *Options) { o.OutputPatience = 5 * time.Second })
	c, _ := tensor.MatMulInt8(r.a, r.b)
	data, _ := c.MarshalBinary()
	r.chain.mu.Lock()
	r.chain.job.ResultDigest = api.DigestOf(data)
	r.chain.mu.Unlock()
	r.grants.AllowRead(r.id, r.chain.job.ResultDigest)
	go func() {
		time.Sleep(600 * time.Millisecond)
		if _, err := transport.PutBlob(context.Background(), r.js, protocol.BlobBucket, data); err != nil {
			t.Error(err)
		}
	}()
	if v := r.verify(t, r.spec); !v.Pass || v.Error != "" {
		t.Fatalf("verdict %+v: an output stored 600 ms after the request, within the patience, must be checked", v)
	}
}

func TestUnretrievableOutputFails(t *testing.T) {
	r := newRig(t)
	r.chain.job.ResultDigest = api.DigestOf([]byte("never stored"))
	r.grants.AllowRead(r.id, r.chain.job.ResultDigest)
	v := r.verify(t, r.spec)
	if v.Pass || len(r.chain.attests) != 1 || r.chain.attests[0].Pass || !strings.Contains(v.Reason, "never uploaded") {
		t.Fatalf("verdict %+v: an output nobody can fetch cannot pass", v)
	}
}

// A digest mismatch can only come from the store itself (it checks every upload against
// its name), so it is never evidence against the node: nothing is attested.
func TestOutputDamagedByTheStoreIsNotEvidence(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	honest, _ := c.MarshalBinary()
	digest := api.DigestOf(honest)
	obs, err := r.js.ObjectStore(context.Background(), protocol.BlobBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(context.Background(), strings.TrimPrefix(digest, "sha256:"), []byte("bit rot")); err != nil {
		t.Fatal(err)
	}
	r.grants.AllowRead(r.id, digest)
	r.chain.mu.Lock()
	r.chain.job.ResultDigest = digest
	r.chain.mu.Unlock()
	v := r.verify(t, r.spec)
	if v.Error == "" || !strings.Contains(v.Error, "digest mismatch") || len(r.chain.attests) != 0 {
		t.Fatalf("verdict %+v, attests %+v: a store fault must not be attested against the node", v, r.chain.attests)
	}
}

// Without the committee's grant the validator cannot read, and attests nothing.
func TestValidatorOutsideTheCommitteeReadsNothing(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	data, _ := c.MarshalBinary()
	d, err := transport.PutBlob(context.Background(), r.js, protocol.BlobBucket, data)
	if err != nil {
		t.Fatal(err)
	}
	r.chain.mu.Lock()
	r.chain.job.ResultDigest = d // stored, but not granted
	r.chain.mu.Unlock()
	v := r.verify(t, r.spec)
	if v.Error == "" || !strings.Contains(v.Error, "forbidden") || len(r.chain.attests) != 0 {
		t.Fatalf("verdict %+v: a validator without a grant must not attest", v)
	}
}

// Requests repeated while a check runs (the router asks again when answers are slow) get
// the one verdict, from one attestation: a second would be refused by the chain.
func TestRepeatedRequestsJoinTheCheckUnderWay(t *testing.T) {
	r := newRig(t)
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	r.chain.delay = 500 * time.Millisecond // every request arrives while the first attests
	var wg sync.WaitGroup
	verdicts := make([]protocol.Verdict, 4)
	for i := range verdicts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := r.router.Request(protocol.VerifySubject(r.id), protocol.Encode(protocol.VerifyRequest{JobID: r.chain.job.ID, Router: "router", Spec: r.spec}), 10*time.Second)
			if err == nil {
				verdicts[i], _ = protocol.Decode[protocol.Verdict](msg.Data)
			}
		}()
	}
	wg.Wait()
	for i, v := range verdicts {
		if !v.Pass || v.AttestTx != "ATTEST" {
			t.Fatalf("request %d: %+v", i, v)
		}
	}
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	if n := len(r.chain.attests); n != 1 {
		t.Fatalf("%d attestations for one job", n)
	}
}

// Checks that end close together attest in one attest_jobs tx, and each request hears its
// own item's outcome: the one job the chain refuses (settled meanwhile) is not attested,
// and the others are, by the batch. A lone check attests alone.
func TestAttestationsShareATx(t *testing.T) {
	const n = 4
	r := newRigWith(t, func(o *Options) { o.AttestWindow, o.AttestBatchMax, o.Parallel = time.Minute, n, n })
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	ids := make([]string, n)
	r.chain.mu.Lock()
	r.chain.others, r.chain.refuse = map[string]ledger.Job{}, map[string]bool{}
	for i := range ids {
		job := r.chain.job
		job.ID = fmt.Sprintf("job-%016x", 0xb0+i)
		ids[i], r.chain.others[job.ID] = job.ID, job
	}
	r.chain.refuse[ids[2]] = true
	r.chain.mu.Unlock()

	verdicts, errs := make([]protocol.Verdict, n), make([]error, n)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			verdicts[i], errs[i] = r.request(id, r.spec)
		}()
	}
	wg.Wait()
	for i, v := range verdicts {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		refused := i == 2
		if refused && (v.Error == "" || !strings.Contains(v.Error, "settled") || v.AttestTx != "") {
			t.Errorf("refused job: verdict %+v, want the chain's refusal", v)
		}
		if !refused && (!v.Pass || v.AttestTx != "ATTEST-BATCH-1") {
			t.Errorf("job %d: verdict %+v, want a pass attested by the batch", i, v)
		}
	}
	r.chain.mu.Lock()
	if len(r.chain.batches) != 1 || r.chain.batches[0] != n || len(r.chain.attests) != n-1 {
		t.Errorf("batches %v, %d attestations: want one batch of %d, all but the refused one attested", r.chain.batches, len(r.chain.attests), n)
	}
	r.chain.mu.Unlock()
}

func TestALoneAttestationGoesAlone(t *testing.T) {
	r := newRigWith(t, func(o *Options) { o.AttestWindow = 5 * time.Millisecond })
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	if v := r.verify(t, r.spec); !v.Pass || v.AttestTx != "ATTEST" || len(r.chain.batches) != 0 {
		t.Fatalf("verdict %+v, batches %v: want one plain attest", v, r.chain.batches)
	}
}

// setJob changes the job the chain records.
func (r *rig) setJob(change func(*ledger.Job)) {
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	change(&r.chain.job)
}

// putMatrix stores an encoded matrix, granted to the validator, and returns its digest.
func (r *rig) putMatrix(t *testing.T, m interface{ MarshalBinary() ([]byte, error) }) string {
	t.Helper()
	data, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return r.put(t, data)
}

// assertNothingAttested fails unless no attestation reached the chain, alone or batched.
func (r *rig) assertNothingAttested(t *testing.T, v protocol.Verdict) {
	t.Helper()
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	if v.Error == "" || v.AttestTx != "" || len(r.chain.attests) != 0 || len(r.chain.batches) != 0 {
		t.Fatalf("verdict %+v, attests %+v: want an error and nothing attested", v, r.chain.attests)
	}
}

// onlyAttestation returns the one attestation the chain received.
func (r *rig) onlyAttestation(t *testing.T) ledger.MsgAttest {
	t.Helper()
	r.chain.mu.Lock()
	defer r.chain.mu.Unlock()
	if len(r.chain.attests) != 1 {
		t.Fatalf("%d attestations, want 1: %+v", len(r.chain.attests), r.chain.attests)
	}
	return r.chain.attests[0]
}

// challenge is a challenge job as an honest router sets it up: the consumer's A with
// challenge rows hidden in it (A', stored and granted to the committee) and the reveal
// on chain.
type challenge struct {
	aPrime    *tensor.Int8Matrix
	positions []uint32
	reveal    ledger.ChallengeReveal
}

// challengeJob makes the rig's job a challenge job, audited or not, and reveals it.
func (r *rig) challengeJob(t *testing.T, audited bool) *challenge {
	t.Helper()
	rows := verify.ChallengeRowsFor(r.a.Rows, r.a.Cols, r.b.Cols)
	aPrime, ch, _, err := verify.BuildChallenge(r.a, r.b, rows, [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	c := &challenge{aPrime: aPrime, positions: ch.Positions, reveal: ledger.ChallengeReveal{Salt: ch.SaltText(), Rows: ch.RowsText()}}
	r.storeAPrime(t, c)
	r.setJob(func(j *ledger.Job) { j.Verification, j.Audited = ledger.VerifyChallenge, audited })
	return c
}

// storeAPrime stores c's A', reveals it with the digest of its challenge rows' expected
// output, and puts the reveal on chain.
func (r *rig) storeAPrime(t *testing.T, c *challenge) {
	t.Helper()
	expected, err := verify.ExpectedRows(c.aPrime, r.b, c.positions)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := expected.MarshalBinary()
	c.reveal.Input, c.reveal.Expected = r.putMatrix(t, c.aPrime), transport.Digest(data)
	reveal := c.reveal
	r.setJob(func(j *ledger.Job) { j.ChallengeReveal = &reveal })
}

// honestOutput is C' = A'·B, what an honest node given A' computes.
func (r *rig) honestOutput(t *testing.T, aPrime *tensor.Int8Matrix) *tensor.Int32Matrix {
	t.Helper()
	c, err := tensor.MatMulInt8(aPrime, r.b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// realRow is the first row of A' that is not a challenge row.
func (c *challenge) realRow() int {
	for i := range c.aPrime.Rows {
		if !slices.Contains(c.positions, uint32(i)) {
			return i
		}
	}
	panic("no real row")
}

func TestHonestChallengeOutputPassesWithTheNodesWork(t *testing.T) {
	for _, audited := range []bool{false, true} {
		t.Run(fmt.Sprintf("audited=%v", audited), func(t *testing.T) {
			r := newRig(t)
			c := r.challengeJob(t, audited)
			r.commitOutput(t, r.honestOutput(t, c.aPrime))
			v := r.verify(t, r.spec)
			att := r.onlyAttestation(t)
			if !v.Pass || !att.Pass || att.Millis != 0 {
				t.Fatalf("verdict %+v, attestation %+v: want a pass", v, att)
			}
			// The node computed n+c rows: 2·(32+32)·16·8 operations, not the consumer's 32.
			if n := len(c.positions); n != 32 || att.Ops != 2*(32+32)*16*8 {
				t.Fatalf("%d challenge rows, %d operations attested: want 32 and %d", n, att.Ops, 2*(32+32)*16*8)
			}
		})
	}
}

func TestWrongChallengeRowFails(t *testing.T) {
	r := newRig(t)
	c := r.challengeJob(t, false)
	out := r.honestOutput(t, c.aPrime)
	out.Data[int(c.positions[0])*out.Cols] ^= 1
	r.commitOutput(t, out)
	v := r.verify(t, r.spec)
	att := r.onlyAttestation(t)
	if v.Pass || att.Pass || v.Error != "" || !strings.Contains(v.Reason, "challenge row") || att.Ops == 0 {
		t.Fatalf("verdict %+v, attestation %+v: want a failing attestation naming the challenge row", v, att)
	}
}

// Challenge rows miss a wrong element in a real row; the full check of an audited job
// does not.
func TestWrongRealRowFailsOnlyWhenAudited(t *testing.T) {
	for _, audited := range []bool{false, true} {
		t.Run(fmt.Sprintf("audited=%v", audited), func(t *testing.T) {
			r := newRig(t)
			c := r.challengeJob(t, audited)
			out := r.honestOutput(t, c.aPrime)
			out.Data[c.realRow()*out.Cols] ^= 1
			r.commitOutput(t, out)
			v := r.verify(t, r.spec)
			if att := r.onlyAttestation(t); v.Pass != !audited || att.Pass != !audited {
				t.Fatalf("audited %v: verdict %+v, attestation %+v", audited, v, att)
			}
		})
	}
}

func TestChallengeOutputNeverUploadedFails(t *testing.T) {
	r := newRig(t)
	r.challengeJob(t, false)
	r.setJob(func(j *ledger.Job) { j.ResultDigest = api.DigestOf([]byte("never stored")) })
	r.grants.AllowRead(r.id, r.chain.job.ResultDigest)
	v := r.verify(t, r.spec)
	if att := r.onlyAttestation(t); v.Pass || att.Pass || !strings.Contains(v.Reason, "never uploaded") {
		t.Fatalf("verdict %+v: an output nobody can fetch cannot pass", v)
	}
}

// A router that reveals a false challenge cannot get an honest node failed: the validator
// checks what the router revealed first, and blames the router, attesting nothing.
func TestFalseChallengeIsTheRoutersFaultNotTheNodes(t *testing.T) {
	cases := []struct {
		name  string
		lie   func(t *testing.T, r *rig, c *challenge)
		cause string
	}{
		{"expected rows are not A'·B's", func(t *testing.T, r *rig, c *challenge) {
			c.reveal.Expected = api.DigestOf([]byte("some other rows"))
			r.setJob(func(j *ledger.Job) { j.ChallengeReveal = &c.reveal })
		}, "expected output"},
		{"A' changes a real row of A", func(t *testing.T, r *rig, c *challenge) {
			c.aPrime.Data[c.realRow()*c.aPrime.Cols] ^= 1
			r.storeAPrime(t, c) // its expected rows are right: only the real row is false
		}, "not the consumer's A"},
		{"rows that are no positions", func(t *testing.T, r *rig, c *challenge) {
			c.reveal.Rows = "zz"
			r.setJob(func(j *ledger.Job) { j.ChallengeReveal = &c.reveal })
		}, "revealed rows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			c := r.challengeJob(t, true)
			tc.lie(t, r, c)
			r.commitOutput(t, r.honestOutput(t, c.aPrime)) // the node computed what it was given
			v := r.verify(t, r.spec)
			r.assertNothingAttested(t, v)
			if !strings.Contains(v.Error, ErrRouterAtFault.Error()) || !strings.Contains(v.Error, tc.cause) {
				t.Fatalf("error %q: want the router blamed for %q", v.Error, tc.cause)
			}
		})
	}
}

func TestUnrevealedChallengeIsRefused(t *testing.T) {
	r := newRig(t)
	r.challengeJob(t, false)
	r.setJob(func(j *ledger.Job) { j.ChallengeReveal = nil })
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	v := r.verify(t, r.spec)
	r.assertNothingAttested(t, v)
	if !strings.Contains(v.Error, "not revealed") {
		t.Fatalf("error %q", v.Error)
	}
}

func TestAuditedTensorJobIsCheckedAsFreivalds(t *testing.T) {
	for _, honest := range []bool{true, false} {
		t.Run(fmt.Sprintf("honest=%v", honest), func(t *testing.T) {
			r := newRig(t)
			r.setJob(func(j *ledger.Job) { j.Verification, j.Audited = ledger.VerifyAudit, true })
			c, _ := tensor.MatMulInt8(r.a, r.b)
			if !honest {
				c.Data[7] ^= 1
			}
			r.commitOutput(t, c)
			v := r.verify(t, r.spec)
			att := r.onlyAttestation(t)
			if v.Pass != honest || att.Pass != honest || att.Ops != 8192 || att.Millis != 0 {
				t.Fatalf("verdict %+v, attestation %+v", v, att)
			}
		})
	}
}

// The chain settles an audit job the draw passed over without its committee: a request
// to check one is refused.
func TestUnauditedJobIsRefused(t *testing.T) {
	r := newRig(t)
	r.setJob(func(j *ledger.Job) { j.Verification = ledger.VerifyAudit })
	c, _ := tensor.MatMulInt8(r.a, r.b)
	r.commitOutput(t, c)
	v := r.verify(t, r.spec)
	r.assertNothingAttested(t, v)
	if !strings.Contains(v.Error, "not drawn for audit") {
		t.Fatalf("error %q", v.Error)
	}
}

// fakeContainer counts the bytes of each input file, as a container job would, and
// records the tasks it is given.
type fakeContainer struct {
	mu    sync.Mutex
	tasks []runtime.ContainerTask
	err   error // every run fails with it, when set
}

func (*fakeContainer) Name() string    { return "fake" }
func (*fakeContainer) Sandboxed() bool { return true }

func (f *fakeContainer) RunContainer(_ context.Context, t runtime.ContainerTask) (runtime.ContainerResult, error) {
	f.mu.Lock()
	f.tasks = append(f.tasks, t)
	f.mu.Unlock()
	if f.err != nil {
		return runtime.ContainerResult{}, f.err
	}
	return runtime.ContainerResult{Outputs: countOutputs(t.Inputs), Elapsed: 1500 * time.Millisecond}, nil
}

func countOutputs(inputs []jobio.File) []jobio.Output {
	var out []jobio.Output
	for _, in := range inputs {
		out = append(out, jobio.Output{Path: in.Path + ".count", Data: fmt.Appendf(nil, "%d", len(in.Data))})
	}
	return out
}

// containerAudit makes the rig's job an audited container job whose image comes as an
// image_archive input; its node committed the output of its run, honest or not.
func (r *rig) containerAudit(t *testing.T, honest bool) api.JobSpec {
	t.Helper()
	text, image := []byte("idle GPUs anywhere"), []byte("a docker save tarball")
	spec := api.JobSpec{
		Workload: api.Workload{Kind: api.WorkloadContainer, Image: "wordcount:1", ImageArchive: "image.tar", Command: []string{"/wc"}},
		Inputs: []api.Input{
			{Name: "text", Digest: r.put(t, text), Size: int64(len(text))},
			{Name: "image.tar", Digest: r.put(t, image), Size: int64(len(image))},
		},
		Verification: api.VerifyAudit, TimeoutSeconds: 60,
	}
	files := []api.OutputFile{{Path: "text.count", Data: fmt.Appendf(nil, "%d", len(text))}}
	if !honest {
		files[0].Data = []byte("0")
	}
	archive, err := api.PackOutput(api.ContainerOutput{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	digest := r.put(t, archive)
	r.setJob(func(j *ledger.Job) {
		j.SpecHash, j.Verification, j.Audited, j.ResultDigest = spec.Hash(), ledger.VerifyAudit, true, digest
		j.Consumer, j.TimeoutSeconds = "consumer", spec.TimeoutSeconds
	})
	return spec
}

func TestContainerAuditRunsTheJobAgain(t *testing.T) {
	for _, honest := range []bool{true, false} {
		t.Run(fmt.Sprintf("honest=%v", honest), func(t *testing.T) {
			fake := &fakeContainer{}
			r := newRigWith(t, func(o *Options) { o.Containers = fake })
			v := r.verify(t, r.containerAudit(t, honest))
			att := r.onlyAttestation(t)
			// A re-run states its time, never operations: a container's different output
			// may be its own nondeterminism, which must not read as proof for a slash.
			if v.Pass != honest || att.Pass != honest || att.Millis != 1500 || att.Ops != 0 {
				t.Fatalf("verdict %+v, attestation %+v", v, att)
			}
			if !honest && (!strings.Contains(v.Reason, r.chain.job.ResultDigest) || strings.Count(v.Reason, "sha256:") != 2) {
				t.Fatalf("reason %q: want both digests", v.Reason)
			}
			task := fake.tasks[0]
			if string(task.ImageArchive) != "a docker save tarball" || len(task.Inputs) != 1 || task.Inputs[0].Path != "text" ||
				task.Consumer != "consumer" || task.Timeout != time.Minute || task.Image != "wordcount:1" {
				t.Fatalf("the container ran %+v: want the node's task, its image loaded from the archive", task)
			}
		})
	}
}

// A node that commits the right digest and never uploads the output would leave its
// consumer paying for nothing: the audit fails it before running anything.
func TestContainerAuditOfAnOutputNeverUploadedFails(t *testing.T) {
	fake := &fakeContainer{}
	r := newRigWith(t, func(o *Options) { o.Containers = fake })
	spec := r.containerAudit(t, true)
	missing := api.DigestOf([]byte("never uploaded"))
	r.grants.AllowRead(r.id, missing) // as the router grants the committed digest
	r.setJob(func(j *ledger.Job) { j.ResultDigest = missing })
	v := r.verify(t, spec)
	if att := r.onlyAttestation(t); v.Pass || att.Pass || !strings.Contains(v.Reason, "never uploaded") || len(fake.tasks) != 0 {
		t.Fatalf("verdict %+v, attestation %+v, %d runs", v, att, len(fake.tasks))
	}
}

// The validator's own trouble is never evidence against the node.
func TestContainerAuditThatCannotRunAttestsNothing(t *testing.T) {
	cases := []struct {
		name       string
		containers runtime.Container
		want       string
	}{
		{"no container runtime", nil, "this validator cannot re-run containers"},
		{"the run fails", &fakeContainer{err: fmt.Errorf("%w: after 60s", jobio.ErrTimedOut)}, "re-run the container"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigWith(t, func(o *Options) { o.Containers = tc.containers })
			v := r.verify(t, r.containerAudit(t, true))
			r.assertNothingAttested(t, v)
			if !strings.Contains(v.Error, tc.want) {
				t.Fatalf("error %q: want %q", v.Error, tc.want)
			}
		})
	}
}
