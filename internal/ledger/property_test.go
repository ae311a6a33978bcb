package ledger

import (
	"crypto/ed25519"
	"math/rand/v2"
	"testing"
)

// TestSupplyIdentityUnderRandomTxs throws random, often invalid, transactions of every type
// from many accounts at the ledger and checks after every block that the books balance and
// match the stored records (no balance can go negative: amounts are unsigned and every
// subtraction is checked).
func TestSupplyIdentityUnderRandomTxs(t *testing.T) {
	outcomes := map[string]int{}
	for seed := uint64(1); seed <= 5; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		h := newHarness(t, testGenesis())
		actors := []ed25519.PrivateKey{consumerKey, node1Key, node2Key, strangerKey, routerKey, validatorKey}
		var jobs []string
		pick := func() ed25519.PrivateKey { return actors[rng.IntN(len(actors))] }
		// usually returns the actor a step needs, sometimes anyone, so both the valid and the
		// rejected paths get exercised
		usually := func(want ...ed25519.PrivateKey) ed25519.PrivateKey {
			if rng.IntN(5) == 0 {
				return pick()
			}
			return want[rng.IntN(len(want))]
		}
		amount := func() uint64 {
			switch rng.IntN(4) {
			case 0:
				return uint64(rng.IntN(3))
			case 1:
				return rng.Uint64()
			default:
				return uint64(rng.IntN(2_000)) * omni / uint64(1+rng.IntN(1000))
			}
		}
		for b := 0; b < 150; b++ {
			var txs [][]byte
			for i := 1 + rng.IntN(3); i > 0; i-- {
				k := pick()
				var m Msg
				switch op := rng.IntN(7); op {
				case 0:
					m.Transfer = &MsgTransfer{To: addr(pick()), Amount: amount()}
				case 1:
					k = usually(node1Key, node2Key)
					stake := 500*omni + uint64(rng.IntN(100))*omni
					if rng.IntN(4) == 0 {
						stake = amount()
					}
					m.RegisterNode = &MsgRegisterNode{Stake: stake, PricePerHour: uint64(1 + rng.IntN(4*int(omni))), Hardware: registerMsg.RegisterNode.Hardware}
				case 2:
					k = usually(consumerKey)
					jobs = append(jobs, JobID(addr(k), h.seqs[addr(k)]))
					m = createMsg(amount())
					m.CreateJob.TimeoutSeconds = uint64(1 + rng.IntN(90))
				case 3, 4, 5, 6:
					if len(jobs) == 0 {
						continue
					}
					id := jobs[len(jobs)-1-rng.IntN(min(3, len(jobs)))] // recent jobs, so some finish
					switch rng.IntN(10) {
					case 0, 1, 2:
						k = usually(routerKey)
						m.AssignJob = &MsgAssignJob{JobID: id, Node: addr(usually(node1Key, node2Key))}
					case 3, 4, 5:
						k = usually(node1Key, node2Key)
						m.CommitResult = &MsgCommitResult{JobID: id, ResultDigest: digestA, GPUMillis: rng.Uint64N(10_000_000)}
					case 6, 7, 8:
						k = usually(validatorKey)
						m.Attest = &MsgAttest{JobID: id, ResultDigest: digestA, Pass: rng.IntN(3) > 0}
					default:
						k = usually(consumerKey)
						m.CancelJob = &MsgCancelJob{JobID: id}
					}
				}
				tx, err := SignTx(k, testChain, h.seqs[addr(k)], m)
				if err != nil {
					continue
				}
				txs = append(txs, tx)
				h.seqs[addr(k)]++ // optimistic; re-synced below
			}
			for _, r := range h.block(txs...) {
				for _, e := range r.Events {
					outcomes[e.Type]++
				}
			}
			for _, k := range actors {
				h.seqs[addr(k)] = query[Account](h, "account/"+string(addr(k))).Seq
			}
			h.checkBooks()
		}
	}
	for _, want := range []string{"transfer", "node_registered", "job_created", "job_assigned", "result_committed", "job_settled", "job_failed", "job_cancelled"} {
		if outcomes[want] == 0 {
			t.Errorf("random run never produced %q; outcomes %v", want, outcomes)
		}
	}
}

func FuzzDecodeTx(f *testing.F) {
	good, _ := SignTx(consumerKey, testChain, 3, createMsg(5))
	f.Add(good)
	f.Add([]byte{1})
	f.Add(append([]byte{1}, make([]byte, 120)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			if CodeFor(err) == CodeInternal {
				t.Fatalf("decode error without a code: %v", err)
			}
			return
		}
		// Anything accepted carries a valid signature by its signer and one message.
		if tx.Body.Kind() == "" {
			t.Fatal("accepted tx without a message")
		}
		_ = tx.Body.ValidateBasic()
	})
}
