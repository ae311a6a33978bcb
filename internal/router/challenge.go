package router

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/verify"
)

// A challenge job's node computes A'·B, where A' is the consumer's first input A with
// challenge rows hidden among its rows (verify.BuildChallenge). The router builds A' once
// the inputs are stored, commits to the rows when it assigns the job, dispatches A' in
// place of A, and reveals the rows once the node has committed its result; the committee
// then checks those rows, and the whole product when the chain drew the job for audit.
// The consumer reads C' with the challenge rows taken out again (JobOutput).

// challengeState is what the router keeps of a challenge job's rows, in its saved record
// so that a restarted router can still reveal them: A' as dispatched, and the fields its
// commitment binds (ledger.ChallengeCommitment).
type challengeState struct {
	Input    api.Input `json:"input"` // A': the consumer's first input with the rows in it
	Rows     int       `json:"rows"`  // how many challenge rows
	Salt     string    `json:"salt"`
	Hidden   string    `json:"hidden"` // the rows' positions (verify's RowsText)
	Expected string    `json:"expected"`
}

// commitment is what the job's assignment carries.
func (c *challengeState) commitment() string {
	return ledger.ChallengeCommitment(c.Salt, c.Input.Digest, c.Hidden, c.Expected)
}

// prepareChallenge builds a challenge job's A' from its stored inputs and stores it; a job
// of another level, or one prepared already (a resumed one), is left as it is.
func (r *Router) prepareChallenge(ctx context.Context, j *job) error {
	if j.spec.Verification != api.VerifyChallenge || j.challengeState() != nil {
		return nil
	}
	inputs := make([][]byte, len(j.spec.Inputs))
	for i, in := range j.spec.Inputs {
		var err error
		if inputs[i], err = r.blobs.Get(ctx, in.Digest); err != nil {
			return fmt.Errorf("read input %s for its challenge rows: %w", in.Name, err)
		}
	}
	a, b, err := tensor.DecodeMatMulInt8Inputs(inputs)
	if err != nil {
		return fmt.Errorf("challenge rows need a matrix product's inputs: %w", err)
	}
	rows := verify.ChallengeRowsFor(a.Rows, a.Cols, b.Cols)
	if rows == 0 {
		return fmt.Errorf("a %d×%d input leaves no room for challenge rows within the tensor limits", a.Rows, a.Cols)
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("draw challenge seed: %w", err)
	}
	aPrime, ch, expected, err := verify.BuildChallenge(a, b, rows, seed)
	if err != nil {
		return fmt.Errorf("build challenge rows: %w", err)
	}
	encoded, err := aPrime.MarshalBinary()
	if err != nil {
		return err
	}
	expectedRows, err := expected.MarshalBinary()
	if err != nil {
		return err
	}
	digest, err := r.blobs.Put(ctx, encoded)
	if err != nil {
		return fmt.Errorf("store the input with its challenge rows: %w", err)
	}
	c := &challengeState{
		Input: api.Input{Name: j.spec.Inputs[0].Name, Digest: digest, Size: int64(len(encoded))},
		Rows:  rows, Salt: ch.SaltText(), Hidden: ch.RowsText(), Expected: transport.Digest(expectedRows),
	}
	j.set(func(j *job) { j.challenge = c })
	j.record("challenge", "", "", "%d challenge rows hidden among the %d rows of input %s", rows, a.Rows, j.spec.Inputs[0].Name)
	return nil
}

// revealChallenge opens a challenge job's commitment once its result is committed (cj is
// the chain's record), unless the chain shows it open already.
func (r *Router) revealChallenge(ctx context.Context, j *job, cj ledger.Job) error {
	if j.spec.Verification != api.VerifyChallenge || cj.Status != ledger.JobComputed || cj.ChallengeReveal != nil {
		return nil
	}
	c := j.challengeState()
	if c == nil {
		return fmt.Errorf("this router holds no challenge rows for the job")
	}
	tx, err := r.opts.Chain.Send(ctx, ledger.Msg{RevealChallenge: &ledger.MsgRevealChallenge{
		JobID: j.id, Salt: c.Salt, Input: c.Input.Digest, Rows: c.Hidden, Expected: c.Expected,
	}})
	if err != nil {
		return fmt.Errorf("reveal challenge rows: %w", err)
	}
	j.record("revealed", "reveal", tx, "challenge rows revealed on chain for the committee to check")
	return nil
}

// challengeState is the job's challenge rows, nil before they are built or for a job of
// another level.
func (j *job) challengeState() *challengeState {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.challenge
}

// dispatched is the spec the job's nodes run: the consumer's, with A' in place of A for a
// challenge job.
func (j *job) dispatched() api.JobSpec {
	c := j.challengeState()
	if c == nil {
		return j.spec
	}
	spec := j.spec
	spec.Inputs = append([]api.Input{c.Input}, j.spec.Inputs[1:]...)
	return spec
}

// stripChallenge takes a revealed challenge job's rows out of its node's output C',
// leaving the consumer's A·B; it needs only the chain's record of the job.
func stripChallenge(cj ledger.Job, output []byte) ([]byte, error) {
	c, err := tensor.DecodeInt32(output)
	if err != nil {
		return nil, fmt.Errorf("the committed output does not decode: %w", err)
	}
	positions, err := verify.DecodeRowsText(cj.ChallengeReveal.Rows, c.Rows)
	if err != nil {
		return nil, err
	}
	stripped, err := verify.StripChallenge(c, positions)
	if err != nil {
		return nil, err
	}
	return stripped.MarshalBinary()
}
