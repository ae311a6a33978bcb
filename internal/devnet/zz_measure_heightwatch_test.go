package devnet

// TEMPORARY: measures the height watch (not to be committed).

import (
	"context"
	"os"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/node"
)

func TestMeasureHeightWatch(t *testing.T) {
	if os.Getenv("OMNISYNC_MEASURE") == "" {
		t.Skip("set OMNISYNC_MEASURE=1")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	d, err := Start(ctx, Options{Home: t.TempDir(), BlockTime: 250 * time.Millisecond, Nodes: 4, Verifiers: 2,
		NodeOptions: func(_ int, o *node.Options) { o.Hardware.GPUs = 8 }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	keys, err := d.FundConsumers(ctx, 64, 40)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []bool{true, false, true, false} {
		chain.WatchOff.Store(off)
		chain.JobReads.Range(func(k, v any) bool { v.(*atomic.Int64).Store(0); return true })
		chain.WatchReads.Store(0)
		h0, _ := d.chain.Client().Height(ctx)
		cpu0 := processCPU()
		res, err := d.RunLoadAsync(ctx, keys, 8, 64, 3*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		h1, _ := d.chain.Client().Height(ctx)
		settled := res.ByStatus[api.StatusSettled]
		counts := map[string]int64{}
		var sites []string
		chain.JobReads.Range(func(k, v any) bool {
			counts[k.(string)] = v.(*atomic.Int64).Load()
			sites = append(sites, k.(string))
			return true
		})
		sort.Strings(sites)
		t.Logf("watch off %v: %d submitted, %d settled in %s, %d blocks, p50 %s, %.1f ms CPU/job, watch height reads %d",
			off, res.Submitted, settled, res.Took.Round(time.Millisecond), h1-h0, res.Percentile(0.5).Round(time.Millisecond),
			float64((processCPU()-cpu0).Milliseconds())/float64(max(settled, 1)), chain.WatchReads.Load())
		for _, s := range sites {
			t.Logf("   job/ reads from %-16s %6d  (%.2f per settled job)", s, counts[s], float64(counts[s])/float64(max(settled, 1)))
		}
	}
}
