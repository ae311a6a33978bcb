package router

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// recordedJob is a job as the router holds one mid-way: scores, txs, a node tried, and n
// events whose messages carry what JSON escapes.
func recordedJob(t testing.TB, n int) *job {
	t.Helper()
	req, _ := consumerJob(t, newFakeChain())
	j := newJob("job-0123456789abcdef", keys.AddressOfKey(newKey(t)), req.Spec, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	j.owner, j.escrowed, j.node, j.attempts, j.tried = keys.AddressOfKey(newKey(t)), true, "node-1", 2, []string{"node-0"}
	j.scores = &api.Scores{Compute: 10_000, Latency: 6_772, Reliability: 5_000, Price: 2_000, Total: 6_831}
	j.txs["create"], j.stored[0] = "E465DA78C678CE81FF9FB27665E7566C42FEA12A84C8AD4DB68CF04674F3A267", true
	for i := range n {
		j.record("placed", "", "", "node %d scored 68.31%% <\"quoted\" & ünïcode>\n", i)
	}
	return j
}

// The record a save writes decodes as the plain encoding of the job's record does, also
// after events are added between saves (the encoded ones are kept, the new appended).
func TestJobRecordEncodesAsThePlainRecord(t *testing.T) {
	j := recordedJob(t, 0)
	for _, add := range []int{0, 1, 3, 8} {
		for i := range add {
			j.record("retry", "", "", "attempt %d: \"declined\"", i)
		}
		j.verdict, j.errMsg = fmt.Sprintf("pass %d", add), ""
		j.mu.Lock()
		got, plain := j.encodeLocked(), mustJSON(j.id, j.recordLocked())
		j.mu.Unlock()
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%d events: %v in %s", len(j.events), err, got)
		}
		if err := json.Unmarshal(plain, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%d events: the record reads\n%s\nwant\n%s", len(j.events), got, plain)
		}
		back, err := jobFromRecord(got)
		if err != nil || len(back.events) != len(j.events) || back.spec.Hash() != j.spec.Hash() {
			t.Fatalf("%d events: read back %v, %d events", len(j.events), err, len(back.events))
		}
	}
}

// BenchmarkJobRecordEncode encodes the record of a job with a dozen events once a change
// (an event more), as a save does; the baseline in the same run is the plain encoding of
// the whole record, which the router did until 2026-12-01.
//
//	go test ./internal/router -run '^$' -bench JobRecordEncode
func BenchmarkJobRecordEncode(b *testing.B) {
	var took [2]time.Duration
	for i, encode := range []func(j *job) []byte{
		func(j *job) []byte { return j.encodeLocked() },
		func(j *job) []byte { return mustJSON(j.id, j.recordLocked()) },
	} {
		j := recordedJob(b, 12)
		start := time.Now()
		for n := range b.N {
			j.record("verifying", "", "", "check %d", n)
			j.mu.Lock()
			_ = encode(j)
			j.mu.Unlock()
			if len(j.events) > 24 { // a job's events stay about this many
				j.events, j.eventsJSON, j.encodedN = j.events[:12], nil, 0
			}
		}
		took[i] = time.Since(start)
	}
	b.ReportMetric(float64(took[0].Nanoseconds())/float64(b.N)/1e3, "µs/save")
	b.ReportMetric(float64(took[1].Nanoseconds())/float64(b.N)/1e3, "µs/save-plain")
	b.ReportMetric(float64(took[1])/float64(took[0]), "x-faster")
}
