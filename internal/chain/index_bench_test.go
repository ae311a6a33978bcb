package chain

import (
	"fmt"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/state/txindex"
	"github.com/cometbft/cometbft/state/txindex/kv"

	"github.com/omnisync/omnisync/internal/ledger"
)

// BenchmarkTxIndexAttrs indexes blocks of a hundred settled jobs' transactions (an escrow
// each, then batches of assignments, results and attestations with their settlements: the
// events the ledger writes, about 26 attributes a job) in CometBFT's kv tx indexer over
// goleveldb, as the chain node does after every block: with the events as toABCIEvents
// makes them now, and, as the baseline in the same run, with every attribute indexed.
//
//	go test ./internal/chain -run '^$' -bench TxIndexAttrs
func BenchmarkTxIndexAttrs(b *testing.B) {
	const jobs = 100
	block := func(height int64) []*abci.TxResult {
		var txs [][]ledger.Event
		for i := range jobs {
			id := fmt.Sprintf("job-%08x%08x", height, i)
			txs = append(txs, []ledger.Event{{Type: "job_created", Attrs: []ledger.Attr{{Key: "job_id", Value: id}, {Key: "consumer", Value: "7ikoJFHUKktuT6qRnLmEsXuGa4GUDubGDSKH6MmMPh8f"}, {Key: "escrowed", Value: "1000000"}}}})
		}
		var assign, commit, attest []ledger.Event
		for i := range jobs {
			id := fmt.Sprintf("job-%08x%08x", height, i)
			item := func(kind ledger.Event) []ledger.Event {
				return []ledger.Event{{Type: ledger.EventBatchItem, Attrs: []ledger.Attr{{Key: "index", Value: fmt.Sprint(i)}, {Key: "job_id", Value: id}, {Key: "code", Value: "0"}}}, kind}
			}
			node := "BvJLDECAxf1aaZyYeF1wYiXhMTcqv41SLWkFZAMfxUgQ"
			assign = append(assign, item(ledger.Event{Type: "job_assigned", Attrs: []ledger.Attr{{Key: "job_id", Value: id}, {Key: "node", Value: node}}})...)
			commit = append(commit, item(ledger.Event{Type: "result_committed", Attrs: []ledger.Attr{{Key: "job_id", Value: id}, {Key: "digest", Value: "sha256:70f6b139fa850dd4fc98549094c4611dc08e15b3c93ab0cd0526bb8c8f5525d1"}}})...)
			attest = append(attest, item(ledger.Event{Type: "attested", Attrs: []ledger.Attr{{Key: "job_id", Value: id}, {Key: "validator", Value: "3CwDqfn2t2"}, {Key: "pass", Value: "true"}}})...)
			attest = append(attest, ledger.Event{Type: "job_settled", Attrs: []ledger.Attr{{Key: "job_id", Value: id}, {Key: "node", Value: node},
				{Key: "paid", Value: "620"}, {Key: "burned", Value: "14"}, {Key: "fee", Value: "33"}, {Key: "refunded", Value: "999333"}, {Key: "reward", Value: "277"}}})
		}
		txs = append(txs, assign, commit, attest)
		out := make([]*abci.TxResult, len(txs))
		for i, events := range txs {
			out[i] = &abci.TxResult{Height: height, Index: uint32(i), Tx: []byte(fmt.Sprintf("tx %d/%d", height, i)),
				Result: abci.ExecTxResult{Events: toABCIEvents(events)}}
		}
		return out
	}
	indexAll := func(results []*abci.TxResult) []*abci.TxResult {
		out := make([]*abci.TxResult, len(results))
		for i, r := range results {
			c := *r
			c.Result.Events = nil
			for _, e := range r.Result.Events {
				attrs := make([]abci.EventAttribute, len(e.Attributes))
				for k, a := range e.Attributes {
					attrs[k] = abci.EventAttribute{Key: a.Key, Value: a.Value, Index: true}
				}
				c.Result.Events = append(c.Result.Events, abci.Event{Type: e.Type, Attributes: attrs})
			}
			out[i] = &c
		}
		return out
	}
	// Each index, in its own database, writes b.N blocks; the two take turns block by
	// block, so that the machine's noise falls on both.
	open := func(name string) *kv.TxIndex {
		db, err := dbm.NewGoLevelDB(name, b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = db.Close() })
		return kv.NewTxIndex(db)
	}
	now, all := open("now"), open("all")
	var took [2]time.Duration
	write := func(i int, idx *kv.TxIndex, results []*abci.TxResult) {
		batch := txindex.NewBatch(int64(len(results)))
		for _, r := range results {
			if err := batch.Add(r); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		if err := idx.AddBatch(batch); err != nil {
			b.Fatal(err)
		}
		took[i] += time.Since(start)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		results := block(int64(n + 1))
		write(0, now, results)
		write(1, all, indexAll(results))
	}
	b.StopTimer()
	perJob := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*jobs) }
	b.ReportMetric(perJob(took[0]), "µs/job")
	b.ReportMetric(perJob(took[1]), "µs/job-all-attrs")
	b.ReportMetric(float64(took[1])/float64(took[0]), "x-faster")
}
