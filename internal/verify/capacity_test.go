package verify

import (
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

func capacityChallenge(n, links int) CapacityChallenge {
	var seed [32]byte
	copy(seed[:], "capacity test seed")
	return CapacityChallenge{Seed: seed, N: n, Links: links}
}

var checkSeed = [32]byte{9, 9, 9}

// fakeLink replaces link i's product with a matrix the node did not compute, and commits
// to it consistently, as a node that skipped the link's product would: the next links
// continue from it honestly.
func fakeLink(t *testing.T, ch CapacityChallenge, sol CapacitySolution, i int) CapacitySolution {
	t.Helper()
	m, _ := tensor.RandomInt8(ch.N, ch.N, uint64(i))
	c := &tensor.Int32Matrix{Rows: ch.N, Cols: ch.N, Data: make([]int32, ch.N*ch.N)}
	for k, v := range m.Data {
		c.Data[k] = int32(v) << 8
	}
	enc, _ := c.MarshalBinary()
	out := CapacitySolution{Digests: append([]string{}, sol.Digests...), Products: append([][]byte{}, sol.Products...)}
	out.Digests[i-1], out.Products[i-1] = CapacityDigest(enc), enc
	x, _ := Requantize(c)
	for j := i + 1; j <= ch.Links; j++ {
		b, _ := CapacityFactor(ch, j)
		cj, _ := tensor.MatMulInt8(x, b)
		enc, _ := cj.MarshalBinary()
		out.Digests[j-1], out.Products[j-1] = CapacityDigest(enc), enc
		x, _ = Requantize(cj)
	}
	return out
}

func checkLink(t *testing.T, ch CapacityChallenge, sol CapacitySolution, digests []string, j int) Verdict {
	t.Helper()
	prev, cur, err := sol.SpotLinks(j)
	if err != nil {
		t.Fatal(err)
	}
	v, err := CheckCapacityLink(ch, j, digests, prev, cur, checkSeed, DefaultRounds)
	if err != nil {
		t.Fatalf("link %d: %v", j, err)
	}
	return v
}

// TestCapacityHonestPasses: every link of an honest answer passes its spot check, and the
// answer is the same on every run (the chain is a function of the seed).
func TestCapacityHonestPasses(t *testing.T) {
	ch := capacityChallenge(32, 6)
	sol, err := SolveCapacity(ch)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SolveCapacity(ch)
	for j := 1; j <= ch.Links; j++ {
		if v := checkLink(t, ch, sol, sol.Digests, j); !v.OK || v.Ops != tensor.MatMulOps(32, 32, 32) {
			t.Fatalf("honest link %d: %+v", j, v)
		}
		if sol.Digests[j-1] != again.Digests[j-1] {
			t.Fatalf("link %d differs between runs", j)
		}
	}
	if ch.Ops() != 6*2*32*32*32 {
		t.Fatalf("ops %d", ch.Ops())
	}
	other := ch
	other.Seed[0] ^= 1
	if o, _ := SolveCapacity(other); o.Digests[0] == sol.Digests[0] {
		t.Fatal("another seed gave the same first link")
	}
}

// TestCapacitySkippedLinkCaught: a node that made up one link's product (and committed to
// it consistently) is caught when that link is checked, and only then; one that made up a
// digest with no product behind it is caught at that link and the next, whose previous
// product it cannot open.
func TestCapacitySkippedLinkCaught(t *testing.T) {
	ch := capacityChallenge(24, 5)
	sol, _ := SolveCapacity(ch)
	lazy := fakeLink(t, ch, sol, 3)
	for j := 1; j <= ch.Links; j++ {
		v := checkLink(t, ch, lazy, lazy.Digests, j)
		if v.OK != (j != 3) {
			t.Fatalf("made-up link 3, check of link %d: %+v", j, v)
		}
	}
	lying := append([]string{}, sol.Digests...)
	lying[2] = "sha256:" + strings.Repeat("0", 64)
	for j := 1; j <= ch.Links; j++ {
		v := checkLink(t, ch, sol, lying, j)
		if v.OK != (j != 3 && j != 4) {
			t.Fatalf("wrong digest 3, check of link %d: %+v", j, v)
		}
		if !v.OK && !strings.Contains(v.Reason, "hashes to") {
			t.Fatalf("link %d: reason %q", j, v.Reason)
		}
	}
}

// TestCapacityMalformedAnswers: a product of the wrong shape, one that does not decode, a
// first link with a previous product, or too few digests fail; a challenge out of bounds
// or a link out of range is the caller's error.
func TestCapacityMalformedAnswers(t *testing.T) {
	ch := capacityChallenge(8, 2)
	sol, _ := SolveCapacity(ch)
	small, _ := (&tensor.Int32Matrix{Rows: 4, Cols: 4, Data: make([]int32, 16)}).MarshalBinary()
	for name, c := range map[string]struct {
		j         int
		digests   []string
		prev, cur []byte
	}{
		"wrong shape":      {1, sol.Digests, nil, small},
		"undecodable":      {1, sol.Digests, nil, []byte("x")},
		"prev on link 1":   {1, sol.Digests, sol.Products[0], sol.Products[0]},
		"too few digests":  {1, sol.Digests[:1], nil, sol.Products[0]},
		"prev undecodable": {2, sol.Digests, []byte("x"), sol.Products[1]},
		"swapped":          {2, sol.Digests, sol.Products[1], sol.Products[0]},
	} {
		v, err := CheckCapacityLink(ch, c.j, c.digests, c.prev, c.cur, checkSeed, 1)
		if err != nil || v.OK {
			t.Errorf("%s: %+v %v", name, v, err)
		}
	}
	for name, c := range map[string]struct {
		ch CapacityChallenge
		j  int
	}{"n 0": {CapacityChallenge{N: 0, Links: 1}, 1}, "n too big": {CapacityChallenge{N: MaxCapacityN + 1, Links: 1}, 1},
		"no links": {CapacityChallenge{N: 8}, 1}, "link 0": {ch, 0}, "link past the end": {ch, 3}} {
		if _, err := CheckCapacityLink(c.ch, c.j, sol.Digests, nil, sol.Products[0], checkSeed, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCapacityDetectionProbability: with b of k links made up, the fraction of the
// C(k, s) choices of s distinct spot-checked links that catch the node is 1 - C(k-b,
// s)/C(k, s), at least 1 - (1-b/k)^s, as the package comment states. Every pair of 10
// links is checked for real here.
func TestCapacityDetectionProbability(t *testing.T) {
	const k, s = 10, 2
	ch := capacityChallenge(8, k)
	sol, _ := SolveCapacity(ch)
	lazy := sol
	bad := []int{2, 5, 6, 8, 10}
	for _, i := range bad {
		lazy = fakeLink(t, ch, lazy, i)
	}
	passes := map[int]bool{}
	for j := 1; j <= k; j++ {
		passes[j] = checkLink(t, ch, lazy, lazy.Digests, j).OK
	}
	caught, pairs := 0, 0
	for a := 1; a <= k; a++ {
		for b := a + 1; b <= k; b++ {
			pairs++
			if !passes[a] || !passes[b] {
				caught++
			}
		}
	}
	b := len(bad)
	wantMissed := (k - b) * (k - b - 1) / 2 // C(k-b, 2)
	if pairs-caught != wantMissed {
		t.Fatalf("%d of %d pairs missed the node, want C(%d,2) = %d", pairs-caught, pairs, k-b, wantMissed)
	}
	f := float64(b) / k
	if got, bound := float64(caught)/float64(pairs), 1-(1-f)*(1-f); got < bound {
		t.Fatalf("caught %.3f, below the bound %.3f", got, bound)
	}
}

// TestCapacityDeadline pins the deadline rule: at 1 milli-TFLOPS (10^6 ops/ms) a
// challenge of 2.5·10^9 ops takes 2,500 ms, so 4× plus 2 s allows 12,000 ms; the rate it
// shows in 1,000 ms is 2.5 milli-TFLOPS, rounded down to 2.
func TestCapacityDeadline(t *testing.T) {
	for _, c := range []struct{ ops, rate, slack, allow, want uint64 }{
		{2_500_000_000, 1, 4, 2000, 12_000},
		{1, 82_600, 4, 2000, 2004},        // any work takes at least a millisecond
		{2_500_000_000, 0, 4, 2000, 0},    // no rate, no deadline
		{82_600_000_001, 82_600, 1, 0, 2}, // rounds up
	} {
		if got := CapacityDeadline(c.ops, c.rate, c.slack, c.allow); got != c.want {
			t.Errorf("CapacityDeadline(%d, %d, %d, %d) = %d, want %d", c.ops, c.rate, c.slack, c.allow, got, c.want)
		}
	}
	for _, c := range []struct{ ops, millis, want uint64 }{{2_500_000_000, 1000, 2}, {1, 0, 1}, {82_600_000_000, 1000, 82}} {
		if got := MeasuredTFLOPSMilli(c.ops, c.millis); got != c.want {
			t.Errorf("MeasuredTFLOPSMilli(%d, %d) = %d, want %d", c.ops, c.millis, got, c.want)
		}
	}
}

// TestCapacityCost reports what a challenge costs this machine to solve and to spot-check.
func TestCapacityCost(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	ch := capacityChallenge(256, 8)
	began := time.Now()
	sol, err := SolveCapacity(ch)
	if err != nil {
		t.Fatal(err)
	}
	solve := time.Since(began)
	began = time.Now()
	checkLink(t, ch, sol, sol.Digests, 5)
	check := time.Since(began)
	t.Logf("n=256, 8 links: %.2e ops solved in %v (%.1f GOPS), one spot check in %v", float64(ch.Ops()), solve, float64(ch.Ops())/solve.Seconds()/1e9, check)
}
