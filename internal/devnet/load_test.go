package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// TestManyConsumersEveryJobSettles is the reduced soak: many consumers submitting back to
// back to three single-GPU nodes, more jobs than GPUs at every moment. Every job must
// settle: none may be given up on while nodes are merely busy.
func TestManyConsumersEveryJobSettles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), nil)
	consumers, err := d.FundConsumers(ctx, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.RunLoad(ctx, consumers, 4, 64, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d jobs in %s: %v", res.Submitted, res.Took.Round(time.Millisecond), res.ByStatus)
	if res.Submitted != 32 || res.ByStatus[api.StatusSettled] != res.Submitted {
		t.Fatalf("%d of %d jobs settled; the others: %v", res.ByStatus[api.StatusSettled], res.Submitted, res.Unsettled)
	}
}
