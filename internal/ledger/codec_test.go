package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// sampleFreivaldsJobs are a freivalds job with every optional part set and one with none.
func sampleFreivaldsJobs() []Job {
	full := Job{
		ID: JobID(addr(consumerKey), 7), Consumer: addr(consumerKey), SpecHash: digestA, Budget: 5 * omni,
		MaxPricePerHour: 3 * omni, Verification: VerifyFreivalds, TimeoutSeconds: 600, Status: JobSettled,
		CreatedHeight: 10, DeadlineUnix: genesisUnix + 600, Node: addr(node1Key), PricePerHour: 2 * omni,
		ScoreBP: 8000, AssignedHeight: 11, ResultDigest: digestA, GPUMillis: 90_000, ResultHeight: 12,
		Seed: jobSeed([]byte("h"), "j"), Committee: []keys.Address{addr(validatorKey), addr(validator2Key)},
		Attestations: []Attestation{{Validator: addr(validatorKey), Pass: true, Height: 13}, {Validator: addr(validator2Key), Reason: "row 3", Height: 14}},
		Settlement:   &Settlement{BilledMillis: 90_000, Cost: 50_000, Paid: 46_500, Burned: 1_000, Fee: 2_500, Refunded: 4_950_000, Reward: 25_000, Height: 14},
	}
	return []Job{full, {ID: full.ID, Status: JobCreated}}
}

// sampleRedundantJobs are a settled redundant job (two agreeing replicas, one outvoted),
// one settled by all three, one settled at its deadline with a replica that never
// revealed, an assigned one whose replicas have not all sealed, one with sealed replicas
// and no reveal, one stored before replicas had seals, and a settlement with shares but no
// replicas (the codec need not know that the ledger never writes one).
func sampleRedundantJobs() []Job {
	settled := Job{
		ID: JobID(addr(consumerKey), 8), Consumer: addr(consumerKey), SpecHash: digestA, Budget: omni,
		MaxPricePerHour: 3 * omni, Verification: VerifyRedundant, TimeoutSeconds: 600, Status: JobSettled,
		CreatedHeight: 10, DeadlineUnix: genesisUnix + 600, ResultDigest: digestA, GPUMillis: 45_005, ResultHeight: 15,
		Replicas: []Replica{
			{Node: addr(node3Key), PricePerHour: 2_999_999, ScoreBP: 7000, AssignedHeight: 11, Seal: digestC, ResultDigest: digestB, GPUMillis: 90_000, ResultHeight: 13},
			{Node: addr(node1Key), PricePerHour: 2 * omni, ScoreBP: 9000, AssignedHeight: 11, Seal: digestB, ResultDigest: digestA, GPUMillis: 90_001, ResultHeight: 14},
			{Node: addr(node2Key), PricePerHour: 1_234_567, AssignedHeight: 12, Seal: digestA, ResultDigest: digestA, GPUMillis: 45_005, ResultHeight: 15},
		},
		Settlement: &Settlement{BilledMillis: 45_005, Cost: 40_437, Paid: 37_606, Burned: 810, Fee: 2_021, Refunded: 959_563, Reward: 12_500, Height: 15,
			Shares: []Share{
				{Node: addr(node1Key), Cost: 25_003, Paid: 23_252, Burned: 501, Fee: 1_250, Reward: 6_250},
				{Node: addr(node2Key), Cost: 15_434, Paid: 14_354, Burned: 309, Fee: 771, Reward: 6_250},
			}},
	}
	allAgree := settled
	allAgree.GPUMillis, allAgree.Replicas = 60_000, slices.Clone(settled.Replicas)
	allAgree.Replicas[0].ResultDigest, allAgree.Replicas[0].GPUMillis = digestA, 60_000
	allAgree.Settlement = &Settlement{BilledMillis: 60_000, Cost: 103_911, Paid: 96_638, Burned: 2_079, Fee: 5_194, Refunded: 896_089, Reward: 16_665, Height: 15,
		Shares: []Share{
			{Node: addr(node3Key), Cost: 50_000, Burned: 1_000, Fee: 2_500, Paid: 46_500, Reward: 5_555},
			{Node: addr(node1Key), Cost: 33_334, Burned: 667, Fee: 1_666, Paid: 31_001, Reward: 5_555},
			{Node: addr(node2Key), Cost: 20_577, Burned: 412, Fee: 1_028, Paid: 19_137, Reward: 5_555},
		}}
	atDeadline := settled
	atDeadline.Replicas = slices.Clone(settled.Replicas)
	atDeadline.Replicas[0].ResultDigest = "" // sealed, never revealed
	assigned := Job{ID: settled.ID, Verification: VerifyRedundant, Status: JobAssigned, Replicas: []Replica{
		{Node: addr(node1Key), PricePerHour: 1, AssignedHeight: 3, Seal: digestC, ResultDigest: digestA, ResultHeight: 4}, {Node: addr(node2Key)},
	}}
	sealed := Job{ID: settled.ID, Verification: VerifyRedundant, Status: JobAssigned, Replicas: []Replica{
		{Node: addr(node1Key)}, {Node: addr(node2Key), Seal: digestB, GPUMillis: 7, ResultHeight: 5}, {Node: addr(node3Key), Seal: digestC, ResultHeight: 6},
	}}
	unsealed := Job{ID: settled.ID, Verification: VerifyRedundant, Status: JobAssigned, Replicas: []Replica{
		{Node: addr(node1Key), ResultDigest: digestA, ResultHeight: 4},
	}}
	sharesOnly := Job{ID: settled.ID, Status: JobSettled, Settlement: &Settlement{Shares: []Share{{Node: addr(node1Key)}}}}
	return []Job{settled, allAgree, atDeadline, assigned, sealed, unsealed, sharesOnly}
}

// sampleBilledJobs are freivalds jobs billed by operation count: one settled, with the
// node's rate and its attesters' counts (a failing attester need state none), and one
// placed, with only the rate.
func sampleBilledJobs() []Job {
	settled := sampleFreivaldsJobs()[0]
	settled.TFLOPSMilli = 82_600
	settled.Attestations = []Attestation{
		{Validator: addr(validatorKey), Pass: true, Height: 13, Ops: 524_288},
		{Validator: addr(validator2Key), Reason: "row 3", Height: 14},
		{Validator: addr(vesterKey), Reason: "row 4", Height: 14, Ops: 1<<64 - 1},
	}
	return []Job{settled, {ID: settled.ID, Status: JobAssigned, Node: settled.Node, TFLOPSMilli: 1}}
}

// sampleAuditedJobs carry what audits of validators brought: transcripts, a job drawn for
// the audit, an attestation found false, a result found wrong (and one whose node had
// nothing left to slash), at the freivalds and challenge levels.
func sampleAuditedJobs() []Job {
	drawn := sampleBilledJobs()[0]
	drawn.AttestationsAudited = true
	drawn.Attestations = []Attestation{
		{Validator: addr(validatorKey), Pass: true, Height: 13, Ops: 524_288, Transcript: digestA},
		{Validator: addr(validator2Key), Pass: true, Height: 13, Ops: 524_288, Transcript: digestB, AuditSlashed: true},
		{Validator: addr(vesterKey), Reason: "row 4", Height: 14},
	}
	challenge := sampleLevelJobs()[0]
	challenge.AttestationsAudited = true
	challenge.Attestations = drawn.Attestations
	undrawn := drawn
	undrawn.AttestationsAudited = false
	found := drawn
	found.FoundWrong = &FoundWrong{Height: 20, Slashed: 50 * omni, Compensated: 556}
	nothing := challenge
	nothing.FoundWrong = &FoundWrong{Height: 21}
	return []Job{drawn, challenge, undrawn, found, nothing}
}

// sampleLevelJobs are challenge and audit jobs: a challenge job revealed, audited and
// settled; one assigned with only its commitment; an audit job failed by an auditor's
// re-run (millis, no ops); and one that settled unaudited.
func sampleLevelJobs() []Job {
	revealed := sampleBilledJobs()[0]
	revealed.Verification, revealed.Audited, revealed.Challenge = VerifyChallenge, true, digestC
	revealed.ChallengeReveal = &ChallengeReveal{Salt: strings.Repeat("ab", 32), Input: digestB, Rows: "AAAAAQ", Expected: digestA, Height: 13}
	assigned := Job{ID: revealed.ID, Verification: VerifyChallenge, Status: JobAssigned, Node: revealed.Node, Challenge: digestC}
	failed := sampleFreivaldsJobs()[0]
	failed.Verification, failed.Audited, failed.Status, failed.Settlement = VerifyAudit, true, JobFailed, nil
	failed.Attestations = []Attestation{{Validator: addr(validatorKey), Reason: "digest differs", Height: 13, Millis: 4_000}}
	unaudited := Job{ID: revealed.ID, Verification: VerifyAudit, Status: JobSettled, GPUMillis: 9, Settlement: &Settlement{BilledMillis: 1000}}
	return []Job{revealed, assigned, failed, unaudited}
}

// sampleRecords are records of every binary kind with every optional part set and unset.
func sampleRecords() []any {
	out := []any{
		Account{Balance: 1, Seq: 2},
		Account{Balance: 50_000 * omni, Seq: 1 << 40, Vesting: &Vesting{Total: 40_000 * omni, CliffUnix: -5, EndUnix: genesisUnix}},
		Node{Address: addr(node1Key), Stake: 500 * omni, PricePerHour: 2 * omni, Hardware: Hardware{GPUModel: "RTX 4090", GPUs: 8, VRAMMiB: 24576, TFLOPSMilli: 82_600, Region: "eu", LatE6: -33_000_000, LonE6: 151_000_000}, Status: NodeActive, RegisteredHeight: 3, JobsVerified: 9, JobsFailed: 1},
		Node{},
		Node{Address: addr(node2Key), Stake: 1, Hardware: Hardware{TFLOPSMilli: 82_600}, Status: NodeInactive, JobsFailed: 2, ProvenTFLOPSMilli: 2, ProvenHeight: 40},
		Node{ProvenHeight: -1},
		Validator{Address: addr(validatorKey), PubKey: pub(validatorKey), Stake: 10_000 * omni, Jailed: true},
		Validator{},
	}
	for _, j := range slices.Concat(sampleFreivaldsJobs(), sampleRedundantJobs(), sampleBilledJobs(), sampleLevelJobs(), sampleAuditedJobs()) {
		out = append(out, j)
	}
	return out
}

// TestBinaryRecordsRoundTrip: every binary record reads back as the value written, and
// queries (which marshal the decoded value to JSON) see exactly what they saw when the
// records were stored as JSON, which the decoders still read.
func TestBinaryRecordsRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		b, err := encodeRecord(r)
		if err != nil || b[0] != binaryMarker {
			t.Fatalf("%T: encoded %x (%v)", r, b, err)
		}
		legacy, _ := json.Marshal(r)
		for _, stored := range [][]byte{b, legacy} {
			back := reflect.New(reflect.TypeOf(r))
			var err error
			switch p := back.Interface().(type) {
			case *Account:
				err = decodeRecord(stored, p)
			case *Node:
				err = decodeRecord(stored, p)
			case *Validator:
				err = decodeRecord(stored, p)
			case *Job:
				err = decodeRecord(stored, p)
			}
			if err != nil || !reflect.DeepEqual(back.Elem().Interface(), r) {
				t.Fatalf("%T stored as %q reads back as %+v (%v), want %+v", r, stored, back.Elem().Interface(), err, r)
			}
			if j, _ := json.Marshal(back.Elem().Interface()); !bytes.Equal(j, legacy) {
				t.Fatalf("%T: query JSON changed:\n%s\n%s", r, j, legacy)
			}
		}
	}
	// A record of one kind does not decode as another, nor with anything after it.
	b, _ := encodeRecord(Account{Balance: 1})
	if err := decodeRecord(b, &Job{}); err == nil {
		t.Fatal("an account decoded as a job")
	}
	if err := decodeRecord(append(b, 0), &Account{}); err == nil {
		t.Fatal("trailing bytes accepted")
	}
	if err := decodeRecord([]byte{binaryMarker, kindAccount, 0x81, 0x00, 0, 0}, &Account{}); err == nil {
		t.Fatal("a padded varint accepted")
	}
}

// TestFreivaldsJobEncodingUnchanged: a freivalds job encodes byte for byte as it did before
// redundant jobs existed (testdata/freivalds_jobs.hex was written by that codec), so the
// job records already stored read back, and hash, the same.
func TestFreivaldsJobEncodingUnchanged(t *testing.T) {
	golden, err := os.ReadFile("testdata/freivalds_jobs.hex")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(golden))
	jobs := sampleFreivaldsJobs()
	if len(want) != len(jobs) {
		t.Fatalf("%d golden encodings for %d sample jobs", len(want), len(jobs))
	}
	for i, j := range jobs {
		b, err := encodeRecord(j)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != want[i] {
			t.Fatalf("job %d encodes as\n%s\nwant\n%s", i, got, want[i])
		}
	}
}

// TestRedundantTailIsCanonical: the tail that carries replicas and shares, and the one
// after it that carries their seals, are there only when they hold something, so a job has
// one encoding: an empty tail, shares with no settlement to hold them, or seals none of
// which is set, is refused. A record written before seals existed still reads.
func TestRedundantTailIsCanonical(t *testing.T) {
	base, _ := encodeRecord(sampleFreivaldsJobs()[1]) // ends with no settlement
	for _, c := range []struct {
		name string
		tail []byte
	}{
		{"empty tail", []byte{0, 0}},
		{"shares without a settlement", []byte{0, 1, 1, 'x', 0, 0, 0, 0, 0}},
		{"replicas but no share count", []byte{1, 1, 'x', 0, 0, 0, 0, 0, 0}},
		{"a seal tail of empty seals", []byte{1, 1, 'x', 0, 0, 0, 0, 0, 0, 0, 0}},
		{"a seal tail cut short", []byte{2, 1, 'x', 0, 0, 0, 0, 0, 0, 1, 'y', 0, 0, 0, 0, 0, 0, 0, 1, 's'}},
	} {
		if err := decodeRecord(append(append([]byte{}, base...), c.tail...), &Job{}); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	settled, _ := encodeRecord(sampleFreivaldsJobs()[0]) // ends with a settlement
	sharesOnly := append(append([]byte{}, settled...), 0, 1, 1, 'x', 0, 0, 0, 0, 0)
	if err := decodeRecord(sharesOnly, &Job{}); err != nil {
		t.Fatalf("shares with no replicas: %v", err)
	}
	if err := decodeRecord(append(sharesOnly, 1, 's'), &Job{}); err == nil {
		t.Error("a seal tail with no replicas: accepted")
	}
	ok := append(append([]byte{}, base...), 1, 1, 'x', 0, 0, 0, 0, 0, 0, 0)
	var j Job
	if err := decodeRecord(ok, &j); err != nil || len(j.Replicas) != 1 || j.Replicas[0].Node != "x" || j.Replicas[0].Committed() {
		t.Fatalf("one replica, stored before seals, decodes as %+v (%v)", j.Replicas, err)
	}
	j = Job{}
	if err := decodeRecord(append(ok, 1, 's'), &j); err != nil || len(j.Replicas) != 1 || j.Replicas[0].Seal != "s" {
		t.Fatalf("one sealed replica decodes as %+v (%v)", j.Replicas, err)
	}
}

// TestBillingFieldsAreCanonical: an attestation's op count and a job's rate follow the
// flag byte before them when its second bit is set, and only then: a job without them
// encodes as before (TestFreivaldsJobEncodingUnchanged), and a set bit with a zero after
// it, or a flag byte with bits beyond the two, is refused.
func TestBillingFieldsAreCanonical(t *testing.T) {
	base := Job{ID: "j", Status: JobComputed, Attestations: []Attestation{{Validator: "v", Pass: true, Height: 1}}}
	withOps, withRate := base, base
	withOps.Attestations = []Attestation{{Validator: "v", Pass: true, Height: 1, Ops: 1}}
	withRate.TFLOPSMilli = 1
	for _, c := range []struct {
		name string
		set  Job
	}{{"an attestation's ops", withOps}, {"a job's rate", withRate}} {
		without, _ := encodeRecord(base)
		with, _ := encodeRecord(c.set)
		i := 0
		for without[i] == with[i] {
			i++
		}
		if len(with) != len(without)+1 || with[i] != without[i]|2 || with[i+1] != 1 {
			t.Fatalf("%s: encodes as %x, without it %x: want the flag's second bit and the value after it", c.name, with, without)
		}
		zero := slices.Clone(with)
		zero[i+1] = 0
		if err := decodeRecord(zero, &Job{}); err == nil {
			t.Errorf("%s: a set bit with 0 after it accepted", c.name)
		}
		wide := slices.Clone(with)
		wide[i] |= 16
		if err := decodeRecord(wide, &Job{}); err == nil {
			t.Errorf("%s: a flag byte with a bit beyond those it has accepted", c.name)
		}
		var back Job
		if err := decodeRecord(with, &back); err != nil || !reflect.DeepEqual(back, c.set) {
			t.Errorf("%s: reads back as %+v (%v)", c.name, back, err)
		}
	}
}

// TestAuditFieldsAreCanonical: an attestation's transcript and audit slash, and a job's
// draw for an audit of validators, take spare bits of the flag bytes before them, so a
// job without them keeps its bytes; a transcript flag with an empty transcript after it
// is refused.
func TestAuditFieldsAreCanonical(t *testing.T) {
	base := sampleBilledJobs()[0]
	before, _ := encodeRecord(base)
	for _, c := range []struct {
		name string
		set  func(*Job)
		bit  byte
	}{
		{"an attestation's audit slash", func(j *Job) { j.Attestations[0].AuditSlashed = true }, 8},
		{"a job's draw", func(j *Job) { j.AttestationsAudited = true }, 4},
	} {
		j := base
		j.Attestations = slices.Clone(base.Attestations)
		c.set(&j)
		with, _ := encodeRecord(j)
		i := 0
		for before[i] == with[i] {
			i++
		}
		if len(with) != len(before) || with[i] != before[i]|c.bit || !bytes.Equal(with[i+1:], before[i+1:]) {
			t.Errorf("%s: encodes as %x, without it %x: want bit %d of one flag byte set", c.name, with, before, c.bit)
		}
	}
	j := base
	j.Attestations = slices.Clone(base.Attestations)
	j.Attestations[0].Transcript = "t"
	with, _ := encodeRecord(j)
	var back Job
	if err := decodeRecord(with, &back); err != nil || back.Attestations[0].Transcript != "t" {
		t.Fatalf("a transcript reads back as %+v (%v)", back.Attestations, err)
	}
	// A result found wrong sets the fourth bit of the job's flag byte and follows the
	// settlement; a fifth bit is refused.
	found := base
	found.FoundWrong = &FoundWrong{Height: 20, Slashed: 7, Compensated: 5}
	foundBytes, _ := encodeRecord(found)
	i := 0
	for before[i] == foundBytes[i] {
		i++
	}
	if foundBytes[i] != before[i]|8 || len(foundBytes) != len(before)+3 {
		t.Errorf("a result found wrong encodes as %x, without it %x: want bit 8 of the job's flag byte and three varints", foundBytes, before)
	}
	wide := slices.Clone(foundBytes)
	wide[i] |= 16
	if err := decodeRecord(wide, &Job{}); err == nil {
		t.Error("a job flag byte with a fifth bit accepted")
	}

	// The first attestation ends in its height (13) and then its transcript: "t" → "".
	empty := bytes.Replace(with, []byte{26, 1, 't'}, []byte{26, 0}, 1)
	if len(empty) != len(with)-1 {
		t.Fatalf("transcript not found in %x", with)
	}
	if err := decodeRecord(empty, &Job{}); err == nil {
		t.Error("a transcript flag with an empty transcript accepted")
	}
}

// TestNodeCapacityTailIsCanonical: a node's proof-of-capacity record follows its old
// fields only once a check has recorded one, so a node never checked encodes as before,
// and a tail with a zero height (which the encoder never writes) is refused.
func TestNodeCapacityTailIsCanonical(t *testing.T) {
	old := Node{Address: addr(node1Key), Stake: 5, Status: NodeActive, JobsFailed: 1}
	before, _ := encodeRecord(old)
	checked := old
	checked.ProvenTFLOPSMilli, checked.ProvenHeight = 7, 9
	after, _ := encodeRecord(checked)
	if !bytes.Equal(after[:len(before)], before) || !bytes.Equal(after[len(before):], []byte{7, 18}) {
		t.Fatalf("checked node encodes as %x, unchecked %x: want the old bytes and the tail", after, before)
	}
	if err := decodeRecord(append(append([]byte{}, before...), 7, 0), &Node{}); err == nil {
		t.Error("a tail with a zero height accepted")
	}
	if err := decodeRecord(append(append([]byte{}, before...), 7), &Node{}); err == nil {
		t.Error("a tail cut short accepted")
	}
}
