package router

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// JobJSON encodes a job byte for byte as json.Marshal encodes what Job returns, the
// events spliced in from the encoding the job's record keeps: before its escrow commits
// and after, as it gains events, some with what JSON escapes.
func TestJobJSONEncodesWhatJobReturns(t *testing.T) {
	chain := &admittingChain{fakeChain: newFakeChain(), gate: make(chan struct{})}
	r, _ := startRouterWith(t, Options{Chain: chain})
	req, _ := consumerJobFor(t, chain.fakeChain, newKey(t), 0, func(*api.JobSpec) {})
	req.Async = true
	submitted, err := r.SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	id := submitted.ID
	r.mu.Lock()
	j := r.jobs[id]
	r.mu.Unlock()
	same := func(when string) {
		t.Helper()
		// The job may change between two reads (its lifecycle goes on): the encoding is
		// compared with a Job read between two JobJSON reads that agree.
		for range 20 {
			v, b, err := r.JobJSON(t.Context(), id)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			job, err := r.Job(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if _, again, _ := r.JobJSON(t.Context(), id); !bytes.Equal(b, again) {
				continue
			}
			if plain, _ := json.Marshal(job); !bytes.Equal(b, plain) {
				t.Fatalf("%s: JobJSON\n%s\nwant, as json.Marshal encodes Job\n%s", when, b, plain)
			}
			if v.Status != job.Status || v.ID != id {
				t.Fatalf("%s: JobJSON's view %s %s, want %s %s", when, v.ID, v.Status, id, job.Status)
			}
			return
		}
		t.Fatalf("%s: the job changed at every read", when)
	}

	same("unescrowed")
	j.record("note", "", "", "<\"quoted\" & ünïcode>\n\u2028")
	same("unescrowed, with an event")
	close(chain.gate)
	waitFor(t, "the escrow committed", func() bool { return jobHas(r, id, "escrowed") })
	same("escrowed")
	for i := range 3 {
		j.record("progress", "", "", "step %d: <%q>", i, "&")
		same("with more events")
	}
}

// JobJSON appends a job's events to its encoding without them: api.Job's events must be
// its last field, left out when there are none.
func TestJobEventsAreTheLastFieldOfAJob(t *testing.T) {
	typ := reflect.TypeFor[api.Job]()
	last := typ.Field(typ.NumField() - 1)
	if last.Name != "Events" || last.Tag.Get("json") != "events,omitempty" {
		t.Fatalf("api.Job's last field is %s `%s`, want Events `json:\"events,omitempty\"`", last.Name, last.Tag)
	}
}

// benchJob submits a job to r and gives it ten events: what a job's readers read.
func benchJob(b *testing.B, r *Router, chain *fakeChain) (string, *job) {
	req, _ := consumerJob(b, chain)
	submitted, err := r.SubmitJob(context.Background(), req)
	if err != nil {
		b.Fatal(err)
	}
	r.mu.Lock()
	j := r.jobs[submitted.ID]
	r.mu.Unlock()
	for len(j.events) < 10 {
		j.record("placed", "", "", "node omni1n0d3x7 scored 68.31%% (compute 10000, latency 6772, reliability 5000, price 2000 bp)")
	}
	return submitted.ID, j
}

// BenchmarkJobJSON reads a job of ten events and encodes it, as its event stream does at
// each change; the baseline, in the same run, is Job and json.Marshal, which the stream
// did until 2026-12-01. Both read the chain's record of the job, from a fake chain that
// encodes and decodes it at every read (a router reads it once a block): x-faster is
// without that read, timed apart.
//
//	go test ./internal/router -run '^$' -bench JobJSON
func BenchmarkJobJSON(b *testing.B) {
	chain := newFakeChain()
	r, _ := startRouter(b, chain)
	id, _ := benchJob(b, r, chain)
	ctx := context.Background()
	var took [3]time.Duration
	for b.Loop() {
		start := time.Now()
		if _, _, err := r.JobJSON(ctx, id); err != nil {
			b.Fatal(err)
		}
		took[0] += time.Since(start)
		start = time.Now()
		job, err := r.Job(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = json.Marshal(job)
		took[1] += time.Since(start)
		start = time.Now()
		if _, err := r.views().Job(ctx, id); err != nil {
			b.Fatal(err)
		}
		took[2] += time.Since(start)
	}
	perRead := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) / 1e3 }
	b.ReportMetric(perRead(took[0]), "µs/read")
	b.ReportMetric(perRead(took[1]), "µs/read-plain")
	b.ReportMetric(perRead(took[2]), "µs/chain-read")
	b.ReportMetric(float64(took[1]-took[2])/float64(took[0]-took[2]), "x-faster")
}
