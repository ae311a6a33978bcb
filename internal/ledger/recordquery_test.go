package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// job_record/<id> answers with the job's stored record, which DecodeJob reads as the very
// job that job/<id>'s JSON gives, at every stage of the job; both refuse a job never
// created alike.
func TestJobRecordQueryReadsAsTheJobQuery(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	id := runJob(t, h, 1*omni, 90_000)
	same := func(stage string) {
		t.Helper()
		rec, err := h.app.Query("job_record/" + id)
		if err != nil {
			t.Fatalf("%s: job_record: %v", stage, err)
		}
		if rec[0] != binaryMarker {
			t.Fatalf("%s: job_record answered %q, want the binary record", stage, rec)
		}
		got, err := DecodeJob(rec)
		if want := query[Job](h, "job/"+id); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: job_record reads as %+v (%v), job/ as %+v", stage, got, err, want)
		}
		rec[len(rec)-1] ^= 0xff // the answer is the caller's to keep or change
		if again, _ := h.app.Query("job_record/" + id); bytes.Equal(again, rec) {
			t.Fatalf("%s: a caller's change to an answer reached the store", stage)
		}
	}
	same("computed")
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
	same("settled")

	for _, path := range []string{"job_record/nope", "job/nope"} {
		if _, err := h.app.Query(path); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v, want ErrNotFound", path, err)
		}
	}
}

// account_record/<addr> answers with the account's stored record, which DecodeAccount reads
// as the account that account/<addr>'s JSON gives: vesting and all, a zero balance for an
// account never written (no record); an address that is none is refused alike.
func TestAccountRecordQueryReadsAsTheAccountQuery(t *testing.T) {
	h := newHarness(t, richGenesis())
	h.mustDo(consumerKey, Msg{Transfer: &MsgTransfer{To: addr(node1Key), Amount: omni}})
	for _, k := range []ed25519.PrivateKey{consumerKey, vesterKey, strangerKey} {
		a := addr(k)
		rec, err := h.app.Query("account_record/" + string(a))
		if err != nil {
			t.Fatalf("account_record/%s: %v", a, err)
		}
		got, err := DecodeAccount(a, rec)
		if want := query[Account](h, "account/"+string(a)); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("account_record/%s reads as %+v (%v), account/ as %+v", a, got, err, want)
		}
		if a == addr(strangerKey) && len(rec) != 0 {
			t.Fatalf("an account never written answered %x", rec)
		}
		if a == addr(vesterKey) && got.Vesting == nil {
			t.Fatalf("the vester's record reads without its vesting: %+v", got)
		}
	}
	for _, path := range []string{"account_record/x", "account/x"} {
		if _, err := h.app.Query(path); !errors.Is(err, ErrInvalidMsg) {
			t.Fatalf("%s: %v, want ErrInvalidMsg", path, err)
		}
	}
}

// DecodeJob reads a record stored as JSON, as the ledger once stored jobs, and refuses
// what is neither form.
func TestDecodeJobReadsEitherForm(t *testing.T) {
	for _, want := range sampleJobs() {
		legacy, _ := json.Marshal(want)
		if got, err := DecodeJob(legacy); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON record reads as %+v (%v), want %+v", got, err, want)
		}
	}
	acct, _ := encodeRecord(Account{Balance: 1})
	for _, bad := range [][]byte{nil, {binaryMarker, kindJob}, acct, []byte(`{"id":`)} {
		if _, err := DecodeJob(bad); !errors.Is(err, ErrDecode) {
			t.Fatalf("DecodeJob(%q): %v, want ErrDecode", bad, err)
		}
	}
}

// sampleJobs are the sample records that are jobs.
func sampleJobs() []Job {
	var out []Job
	for _, r := range sampleRecords() {
		if j, ok := r.(Job); ok {
			out = append(out, j)
		}
	}
	return out
}

// FuzzDecodeJob: DecodeJob never panics; a binary record it accepts is the one encoding
// of the job it returns, and any job it returns marshals as job/<id> answers.
func FuzzDecodeJob(f *testing.F) {
	for _, j := range sampleJobs() {
		b, _ := encodeRecord(j)
		f.Add(b)
		legacy, _ := json.Marshal(j)
		f.Add(legacy)
	}
	f.Add([]byte{binaryMarker, kindJob, 0x80, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := DecodeJob(b)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("refused with %v, not ErrDecode", err)
			}
			return
		}
		if _, err := json.Marshal(j); err != nil {
			t.Fatalf("decoded job does not marshal: %v", err)
		}
		if b[0] == binaryMarker {
			if out, _ := encodeRecord(j); !reflect.DeepEqual(out, b) {
				t.Fatalf("job decoded from %x encodes as %x", b, out)
			}
		}
	})
}

// BenchmarkJobQuery is a Go client's read of a settled job: the query's answer made and
// decoded, as JSON (job/<id>) and as the stored record (job_record/<id>).
func BenchmarkJobQuery(b *testing.B) {
	h := newHarness(b, testGenesis())
	h.mustDo(node1Key, registerMsg)
	id := JobID(addr(consumerKey), h.seqs[addr(consumerKey)])
	h.mustDo(consumerKey, createMsg(omni))
	h.mustDo(routerKey, Msg{AssignJob: &MsgAssignJob{JobID: id, Node: addr(node1Key), ScoreBP: 8000}})
	h.mustDo(node1Key, Msg{CommitResult: &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: 90_000}})
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := h.app.Query("job/" + id)
			var j Job
			if err == nil {
				err = json.Unmarshal(raw, &j)
			}
			if err != nil || j.Status != JobSettled {
				b.Fatal(j.Status, err)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := h.app.Query("job_record/" + id)
			var j Job
			if err == nil {
				j, err = DecodeJob(raw)
			}
			if err != nil || j.Status != JobSettled {
				b.Fatal(j.Status, err)
			}
		}
	})
}

// BenchmarkAccountQuery is a Go client's read of an account (a consumer's, as a router
// reads it for every job submitted): as JSON (account/<addr>) and as the stored record
// (account_record/<addr>).
func BenchmarkAccountQuery(b *testing.B) {
	h := newHarness(b, testGenesis())
	a := string(addr(consumerKey))
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := h.app.Query("account/" + a)
			var acc Account
			if err == nil {
				err = json.Unmarshal(raw, &acc)
			}
			if err != nil || acc.Balance == 0 {
				b.Fatal(acc, err)
			}
		}
	})
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			raw, err := h.app.Query("account_record/" + a)
			var acc Account
			if err == nil {
				acc, err = DecodeAccount(addr(consumerKey), raw)
			}
			if err != nil || acc.Balance == 0 {
				b.Fatal(acc, err)
			}
		}
	})
}
