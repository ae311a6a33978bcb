package ledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
)

// sampleRecords are records of every binary kind with every optional part set and unset.
func sampleRecords() []any {
	full := Job{
		ID: JobID(addr(consumerKey), 7), Consumer: addr(consumerKey), SpecHash: digestA, Budget: 5 * omni,
		MaxPricePerHour: 3 * omni, Verification: VerifyFreivalds, TimeoutSeconds: 600, Status: JobSettled,
		CreatedHeight: 10, DeadlineUnix: genesisUnix + 600, Node: addr(node1Key), PricePerHour: 2 * omni,
		ScoreBP: 8000, AssignedHeight: 11, ResultDigest: digestA, GPUMillis: 90_000, ResultHeight: 12,
		Seed: jobSeed([]byte("h"), "j"), Committee: []keys.Address{addr(validatorKey), addr(validator2Key)},
		Attestations: []Attestation{{Validator: addr(validatorKey), Pass: true, Height: 13}, {Validator: addr(validator2Key), Reason: "row 3", Height: 14}},
		Settlement:   &Settlement{BilledMillis: 90_000, Cost: 50_000, Paid: 46_500, Burned: 1_000, Fee: 2_500, Refunded: 4_950_000, Reward: 25_000, Height: 14},
	}
	return []any{
		Account{Balance: 1, Seq: 2},
		Account{Balance: 50_000 * omni, Seq: 1 << 40, Vesting: &Vesting{Total: 40_000 * omni, CliffUnix: -5, EndUnix: genesisUnix}},
		Node{Address: addr(node1Key), Stake: 500 * omni, PricePerHour: 2 * omni, Hardware: Hardware{GPUModel: "RTX 4090", GPUs: 8, VRAMMiB: 24576, TFLOPSMilli: 82_600, Region: "eu", LatE6: -33_000_000, LonE6: 151_000_000}, Status: NodeActive, RegisteredHeight: 3, JobsVerified: 9, JobsFailed: 1},
		Node{},
		Validator{Address: addr(validatorKey), PubKey: pub(validatorKey), Stake: 10_000 * omni, Jailed: true},
		Validator{},
		full,
		Job{ID: full.ID, Status: JobCreated},
	}
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
