package validator

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/verify"
)

// capacityChain lists nodes and records capacity reports.
type capacityChain struct {
	mu      sync.Mutex
	nodes   []ledger.Node
	reports []ledger.MsgCapacityReport
}

func (c *capacityChain) Send(_ context.Context, m ledger.Msg) (string, error) {
	if err := m.ValidateBasic(); err != nil || m.CapacityReport == nil {
		return "", fmt.Errorf("unexpected %s (%v)", m.Kind(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reports = append(c.reports, *m.CapacityReport)
	return "REPORT", nil
}

func (c *capacityChain) SendBatch(context.Context, ledger.Msg) (string, []error, error) {
	return "", nil, fmt.Errorf("unexpected batch")
}

func (c *capacityChain) Query(_ context.Context, path string, v any) error {
	if path != "nodes" {
		return fmt.Errorf("%w: %s", ledger.ErrNotFound, path)
	}
	c.mu.Lock()
	b, _ := json.Marshal(c.nodes)
	c.mu.Unlock()
	return json.Unmarshal(b, v)
}

// fakeProver is a node that answers challenges as behave says.
type fakeProver struct {
	delay  time.Duration // how long it takes to answer the digests, on clock
	clock  *fakeClock    // the checker's clock (capacityRig), moved on by delay
	lie    bool          // answer made-up digests
	refuse bool          // refuse to open any link
	mu     sync.Mutex
	sols   map[string]verify.CapacitySolution
	asked  int
}

func (p *fakeProver) Challenge(ctx context.Context, _ string, req protocol.CapacityRequest) (protocol.CapacityAnswer, error) {
	p.mu.Lock()
	p.asked++
	p.mu.Unlock()
	ch := verify.CapacityChallenge{N: req.N, Links: req.Links}
	seed, _ := hex.DecodeString(req.Seed)
	copy(ch.Seed[:], seed)
	sol, err := verify.SolveCapacity(ch)
	if err != nil {
		return protocol.CapacityAnswer{}, err
	}
	// It answers when clock says, not when the solve ends on this machine's time: a
	// loaded machine could run the solve past the real deadline.
	p.clock.advance(p.delay)
	p.mu.Lock()
	p.sols[req.Seed] = sol
	p.mu.Unlock()
	digests := sol.Digests
	if p.lie {
		digests = make([]string, len(sol.Digests))
		for i := range digests {
			digests[i] = "sha256:" + strings.Repeat(fmt.Sprintf("%x", i%16), 64)
		}
	}
	return protocol.CapacityAnswer{Seed: req.Seed, Digests: digests}, nil
}

func (p *fakeProver) Spot(_ context.Context, _ string, req protocol.SpotRequest) (protocol.SpotAnswer, error) {
	if p.refuse {
		return protocol.SpotAnswer{Error: "lost it"}, nil
	}
	p.mu.Lock()
	sol := p.sols[req.Seed]
	p.mu.Unlock()
	prev, cur, err := sol.SpotLinks(req.Link)
	if err != nil {
		return protocol.SpotAnswer{Error: err.Error()}, nil
	}
	return protocol.SpotAnswer{Prev: prev, Cur: cur}, nil
}

// fakeClock is a capacity checker's clock that moves only when told, so that how long
// the fake prover takes to solve on a loaded machine cannot make it late or early.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// capacityRig is a validator with the capacity checker configured (not started) and a
// node declaring 1 milli-TFLOPS: a challenge of N = 32 sized for 20 ms at that rate is 305
// links, 2·10^7 operations, due in 4 × 20 ms + 200 ms = 280 ms.
func capacityRig(t *testing.T, p *fakeProver) (*Daemon, *capacityChain, ledger.Node) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(nil)
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	node := ledger.Node{Address: keys.AddressOfKey(nodeKey), Status: ledger.NodeActive, Hardware: ledger.Hardware{TFLOPSMilli: 1}}
	c := &capacityChain{nodes: []ledger.Node{node}}
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p.clock = clock
	d, err := New(Options{Key: key, Chain: c, RouterURL: "wss://unused", Logger: slog.New(slog.DiscardHandler), Capacity: CapacityOptions{
		Every: time.Hour, N: 32, Target: 20 * time.Millisecond, Slack: 4, Allowance: 200 * time.Millisecond, Poll: 10 * time.Millisecond,
		Now: clock.Now,
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.sols = map[string]verify.CapacitySolution{}
	d.prover = p
	return d, c, node
}

// TestCapacityCheckOutcomes: an honest node that answers in time is reported proven with
// the time it took; one that answers after the deadline, or will not open the links it is
// asked for, is reported slow (no evidence: no slash) with at least the deadline as its
// time; one whose digests are made up is reported wrong.
func TestCapacityCheckOutcomes(t *testing.T) {
	for _, c := range []struct {
		name    string
		prover  *fakeProver
		outcome string
	}{
		{"honest", &fakeProver{}, ledger.CapacityProven},
		{"late", &fakeProver{delay: 500 * time.Millisecond}, ledger.CapacitySlow},
		{"unopened", &fakeProver{refuse: true}, ledger.CapacitySlow},
		{"lying", &fakeProver{lie: true}, ledger.CapacityWrong},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, chain, node := capacityRig(t, c.prover)
			rep, err := d.checkCapacity(context.Background(), node)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Outcome != c.outcome || rep.Ops != 305*2*32*32*32 || rep.Node != node.Address {
				t.Fatalf("report %+v, want %s", rep, c.outcome)
			}
			switch rep.Outcome {
			case ledger.CapacityProven:
				if rep.Millis > 280 {
					t.Fatalf("proven in %d ms, past the deadline", rep.Millis)
				}
			case ledger.CapacitySlow:
				if rep.Millis < 280 {
					t.Fatalf("slow in %d ms, under the deadline", rep.Millis)
				}
			}
			if len(chain.reports) != 1 || chain.reports[0] != rep {
				t.Fatalf("chain got %+v", chain.reports)
			}
		})
	}
}

// TestCapacityChallengesAreFresh: two challenges of one node have different seeds, and
// the plan gives a node claiming more a longer chain, capped at verify.MaxCapacityLinks.
func TestCapacityChallengesAreFresh(t *testing.T) {
	d, _, node := capacityRig(t, &fakeProver{})
	a, _ := d.newChallenge(context.Background(), node)
	b, _ := d.newChallenge(context.Background(), node)
	if a.Seed == b.Seed {
		t.Fatal("two challenges share a seed")
	}
	o := d.opts.Capacity
	for _, c := range []struct{ rate, links uint64 }{{1, 305}, {10, 3051}, {82_600, verify.MaxCapacityLinks}} {
		if _, links := capacityPlan(o, c.rate); uint64(links) != c.links {
			t.Errorf("rate %d: %d links, want %d", c.rate, links, c.links)
		}
	}
}

// TestCapacityLoopChallengesNewNodes: the checker's loop challenges a node as soon as it
// sees it on chain, then not again before its next random time (mean an hour here).
func TestCapacityLoopChallengesNewNodes(t *testing.T) {
	p := &fakeProver{}
	d, chain, _ := capacityRig(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	d.capacityChecks.Add(1)
	go func() {
		defer d.capacityChecks.Done()
		d.runCapacity(ctx)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		chain.mu.Lock()
		n := len(chain.reports)
		chain.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no report")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // ten more polls
	cancel()
	d.capacityChecks.Wait()
	if p.asked != 1 || chain.reports[0].Outcome != ledger.CapacityProven {
		t.Fatalf("asked %d times, reports %+v", p.asked, chain.reports)
	}
}
