package router

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
)

// BenchmarkJobListing lists one consumer's jobs (GET /v1/jobs) from a store that holds
// 2,000 job records of other consumers. The baseline, in the same run, is a listing by a
// router that does not yet know whose the records are (the first listing after a start),
// which decodes every record; the listings after it decode only the consumer's own.
//
//	go test ./internal/router -run '^$' -bench JobListing
func BenchmarkJobListing(b *testing.B) {
	chain := newFakeChain()
	r, _ := startRouter(b, chain)
	ctx := context.Background()
	alice, other := newKey(b), newKey(b)
	req, _ := consumerJob(b, chain)
	for i := range 2000 {
		j := newJob(fmt.Sprintf("job-%016x", i), keys.AddressOfKey(other), req.Spec, time.Now())
		data, _ := j.snapshot()
		if _, err := r.kv.Put(ctx, j.id, data); err != nil {
			b.Fatal(err)
		}
	}
	list := func() {
		if _, err := r.Jobs(ctx, api.SignJobListAuth(alice, string(keys.AddressOfKey(alice)), time.Minute, time.Now()), api.JobQuery{}); err != nil {
			b.Fatal(err)
		}
	}
	var cold, warm time.Duration
	for b.Loop() {
		r.listMu.Lock()
		r.consumerOf = nil // as after a start
		r.listMu.Unlock()
		start := time.Now()
		list()
		cold += time.Since(start)
		start = time.Now()
		list()
		warm += time.Since(start)
	}
	b.ReportMetric(float64(cold.Milliseconds())/float64(b.N), "cold-ms")
	b.ReportMetric(float64(warm.Milliseconds())/float64(b.N), "warm-ms")
	b.ReportMetric(float64(cold)/float64(warm), "cold/warm")
}
