package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// BenchmarkDemoSubmitToSettled runs the demo job end to end (REST submit, escrow, place,
// assign, compute, commit, Freivalds, attest, settle) on a devnet with the default 250 ms
// blocks. The baseline, measured in the same run, is the chain's own block interval: a
// job needs four transactions in sequence (create, assign, result, attest), so about four
// blocks is the floor the protocol allows.
func BenchmarkDemoSubmitToSettled(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := Start(ctx, Options{Home: b.TempDir(), BlockTime: 250 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()

	// Baseline: the interval between committed blocks while transactions flow (empty
	// blocks wait longer by design).
	interval := measureBlockInterval(ctx, b, d)

	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		o, err := d.RunDemo(ctx, nil)
		if err != nil || o.Status != api.StatusSettled {
			b.Fatalf("demo: %+v %v", o, err)
		}
		total += time.Since(start)
	}
	per := total / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/settled-job")
	b.ReportMetric(interval.Seconds(), "s/block")
	b.ReportMetric(float64(per)/float64(interval), "blocks/settled-job")
}

func measureBlockInterval(ctx context.Context, b *testing.B, d *Devnet) time.Duration {
	b.Helper()
	const n = 4
	h0, err := d.Chain().Height(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Keep the mempool busy so blocks come at the commit timeout, not the empty interval.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n+1; i++ {
			if _, err := d.RunDemo(ctx, nil); err != nil {
				return
			}
		}
	}()
	if err := d.Chain().WaitForHeight(ctx, h0+1); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := d.Chain().WaitForHeight(ctx, h0+1+n); err != nil {
		b.Fatal(err)
	}
	interval := time.Since(start) / n
	<-done
	return interval
}
