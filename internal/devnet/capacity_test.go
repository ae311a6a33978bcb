package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/node"
	"github.com/omnisync/omnisync/internal/validator"
	"github.com/omnisync/omnisync/internal/verify"
)

// TestCapacityProofs turns the validator's capacity checker on and runs three nodes on
// this CPU, each challenged when the validator first sees it (n = 128, sized for 20 ms at
// the declared rate, due within 2× that plus 500 ms):
//
//   - node 1 declares 1 milli-TFLOPS (10^9 operations a second): 2·10^7 operations due in
//     540 ms, which the CPU beats even under the race detector on a busy machine (a 100 ms
//     target, 10^8 operations, did not, once, in CI): reported proven at its declared
//     rate, nothing slashed;
//   - node 2 declares 82.6 TFLOPS: the most links a challenge has, 1.7·10^10 operations,
//     due in 540 ms, which the CPU does not finish: reported slow, its proven rate (what its
//     jobs are billed at) far below its claim and a failure counted, but no slash;
//   - node 3 declares 1 milli-TFLOPS and makes up its digests: slashed FraudSlashBP.
func TestCapacityProofs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	liar := func(ctx context.Context, ch verify.CapacityChallenge, proceed func() bool) (verify.CapacitySolution, error) {
		sol, err := verify.SolveCapacityWhile(ch, proceed)
		for i := range sol.Digests {
			sol.Digests[i] = verify.CapacityDigest([]byte{byte(i)})
		}
		return sol, err
	}
	d, err := Start(ctx, Options{
		Home: t.TempDir(), BlockTime: 100 * time.Millisecond,
		NodeOptions: func(i int, o *node.Options) {
			o.Hardware.TFLOPSMilli = []uint64{1, 82_600, 1}[i]
			if i == 2 {
				o.Capacity = liar
			}
		},
		Capacity: validator.CapacityOptions{
			Every: time.Hour, N: 128, Target: 20 * time.Millisecond, Slack: 2, Allowance: 500 * time.Millisecond, Poll: 200 * time.Millisecond,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ids := d.NodeIDs()
	read := func(i int) ledger.Node {
		var n ledger.Node
		if err := d.Chain().Query(ctx, "node/"+ids[i], &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for {
		honest, slow, lying := read(0), read(1), read(2)
		if honest.ProvenHeight != 0 && slow.ProvenHeight != 0 && lying.Stake < nodeStake {
			if honest.ProvenTFLOPSMilli != 1 || honest.JobsFailed != 0 || honest.Stake != nodeStake {
				t.Errorf("honest node: %+v", honest)
			}
			if slow.ProvenTFLOPSMilli >= 82_600 || slow.JobsFailed != 1 || slow.Stake != nodeStake || slow.BillingTFLOPSMilli() != slow.ProvenTFLOPSMilli {
				t.Errorf("slow node: %+v", slow)
			}
			if lying.Stake != nodeStake-nodeStake/10 || lying.JobsFailed != 1 {
				t.Errorf("lying node: %+v", lying)
			}
			t.Logf("proven rates: honest %d, slow %d (declared 82,600) milli-TFLOPS", honest.ProvenTFLOPSMilli, slow.ProvenTFLOPSMilli)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not all reported: %+v\n%+v\n%+v", honest, slow, lying)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
