package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
)

// countingChain counts the validator lookups a node makes; it lists no validator.
type countingChain struct {
	fakeChain
	mu      sync.Mutex
	lookups int
}

func (c *countingChain) Query(ctx context.Context, path string, v any) error {
	if strings.HasPrefix(path, "validator/") {
		c.mu.Lock()
		c.lookups++
		c.mu.Unlock()
	}
	return c.fakeChain.Query(ctx, path, v)
}

// An attacker test: anyone may publish a capacity challenge to a node, so a stream of them
// from a participant that is no validator must not cost the node a chain query each. It is
// refused from memory for refusedFor, then asked about again.
func TestCapacityChallengersNotValidatorsAreRefusedFromMemory(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	chain := &countingChain{}
	now := time.Unix(1_700_000_000, 0)
	d, err := New(Options{
		Key: key, RouterURL: "wss://127.0.0.1:1", Chain: chain, Runtime: runtime.Native{},
		Hardware: ledger.Hardware{GPUModel: "test", GPUs: 1, VRAMMiB: 1024, TFLOPSMilli: 1000}, PricePerHour: 1, Stake: 500,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := d.isValidator(context.Background(), "spammer"); err == nil || !strings.Contains(err.Error(), "not an active validator") {
			t.Fatalf("a stranger's challenge: %v", err)
		}
	}
	if chain.lookups != 1 {
		t.Fatalf("%d chain lookups for 100 challenges from one stranger, want 1", chain.lookups)
	}
	now = now.Add(refusedFor)
	_ = d.isValidator(context.Background(), "spammer")
	if chain.lookups != 2 {
		t.Fatalf("after %s: %d lookups, want the chain asked again", refusedFor, chain.lookups)
	}
}
