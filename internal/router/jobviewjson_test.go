package router

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// appendJobJSON encodes a job byte for byte as json.Marshal encodes it, for random jobs:
// every field empty or set, text with what JSON escapes, more txs than its stack holds,
// with and without events.
func TestJobViewEncoderMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	text := func() string {
		if rng.IntN(3) == 0 {
			return ""
		}
		return randomText(rng)
	}
	for i := range 2000 {
		v := api.Job{ID: text(), Consumer: text(), Status: text(), Node: text(), ResultDigest: text(),
			Verified: rng.IntN(2) == 0, Verdict: text(), Kind: text(), Verification: text(),
			Audited: rng.IntN(2) == 0, Attempts: rng.IntN(5) - 1, Error: text()}
		if rng.IntN(2) == 0 {
			v.Scores = &api.Scores{Compute: rng.Uint32(), Latency: rng.Uint32(), Reliability: uint32(rng.IntN(10_001)), Price: 0, Total: rng.Uint32()}
		}
		if rng.IntN(2) == 0 {
			v.Payment = &api.Payment{Budget: rng.Uint64(), Cost: rng.Uint64N(3), PaidToNode: rng.Uint64(), Burned: 0,
				ProtocolFee: rng.Uint64(), Refunded: rng.Uint64N(1000), BilledMillis: rng.Uint64(), NetworkReward: rng.Uint64N(2)}
		}
		switch rng.IntN(3) {
		case 0: // nil
		case 1:
			v.Txs = map[string]string{} // empty, left out as nil is
		default:
			v.Txs = map[string]string{}
			for range 1 + rng.IntN(12) { // more keys than appendJobJSON has room for on its stack
				v.Txs[text()] = text()
			}
		}
		if i%3 == 1 {
			v.Replicas = []api.Replica{}
		}
		for range rng.IntN(4) {
			v.Replicas = append(v.Replicas, api.Replica{Node: text(), ResultDigest: text(), Paid: rng.Uint64N(3), Reward: rng.Uint64N(3)})
		}
		var events []byte
		for k := range rng.IntN(4) {
			e := api.Event{Time: randomTime(rng), Stage: text(), Message: text()}
			if k > 0 {
				events = append(events, ',')
			}
			var err error
			if events, err = appendEvent(events, e); err != nil {
				t.Fatal(err)
			}
			v.Events = append(v.Events, e)
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got := appendJobJSON([]byte("prefix"), &v, events)
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Fatalf("%+v encodes as\n%s\nwant\n%s", v, got, want)
		}
	}
}

// appendJobJSON knows every field of what it encodes: a field added to api.Job,
// api.Payment or api.Replica must be added to it (and to the random jobs above), or
// JobJSON would silently drop it.
func TestJobViewEncoderKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[api.Job](), []string{"ID", "Consumer", "Status", "Node", "Scores", "ResultDigest", "Verified", "Verdict",
			"Payment", "Txs", "Kind", "Verification", "Audited", "Replicas", "Attempts", "Error", "Events"}},
		{reflect.TypeFor[api.Payment](), []string{"Budget", "Cost", "PaidToNode", "Burned", "ProtocolFee", "Refunded", "BilledMillis", "NetworkReward"}},
		{reflect.TypeFor[api.Replica](), []string{"Node", "ResultDigest", "Paid", "Reward"}},
		{reflect.TypeFor[api.Scores](), []string{"Compute", "Latency", "Reliability", "Price", "Total"}},
	} {
		if got := fieldNames(c.typ); !slices.Equal(got, c.want) {
			t.Errorf("%s has fields %v; appendJobJSON (views.go) writes %v", c.typ, got, c.want)
		}
	}
}

// heightChain is a fakeChain that tells its height, as a router's chain.Wallet does: the
// router then reads each job from the chain once a block (jobReads), as in a devnet.
type heightChain struct{ *fakeChain }

func (heightChain) Height(context.Context) (int64, error) { return 1, nil }

// BenchmarkJobJSONOnceABlock reads a placed job of ten events and four txs and encodes
// it, as its event stream does at each change, with the chain's record read once a block
// as a devnet router reads it: what is left is the router's own work per read.
//
//	go test ./internal/router -run '^$' -bench JobJSONOnceABlock
func BenchmarkJobJSONOnceABlock(b *testing.B) {
	chain := newFakeChain()
	r, _ := startRouterWith(b, Options{Chain: heightChain{chain}, DispatchTimeout: 2 * time.Second, HeartbeatTTL: time.Minute, MaxAttempts: 3})
	id, j := benchJob(b, r, chain)
	j.mu.Lock()
	j.scores = &api.Scores{Compute: 10000, Latency: 6772, Reliability: 5000, Price: 2000, Total: 6831}
	for _, stage := range []string{"escrow", "assign", "result", "attest"} {
		j.txs[stage] = "8F3A9C1D2E4B5A6F7081920A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E"
	}
	j.mu.Unlock()
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := r.JobJSON(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
