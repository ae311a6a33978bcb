package ledger

import (
	"fmt"
	"testing"
)

func TestNodeHistoryRecordsEarningsAndSlashes(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	var settled []string
	for range 3 {
		id := runJob(t, h, 1*omni, 90_000)
		h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
		settled = append(settled, id)
	}
	bad := runJob(t, h, 1*omni, 1000)
	h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: bad, ResultDigest: digestA, Pass: false, Reason: "freivalds mismatch"}})

	node := string(addr(node1Key))
	hist := query[NodeHistory](h, "node_history/"+node)
	// Each settlement paid 46,500 from escrow and 25,000 from the rewards pool (see
	// TestJobSettlesWithExactSplit); the slash took 10% of the 500 OMNI stake.
	want := NodeRecord{Settled: 3, Failed: 1, Slashes: 1, Earned: 3 * 71_500, Slashed: 50 * omni, LastUnix: hist.Record.LastUnix}
	if hist.Record != want {
		t.Fatalf("record %+v, want %+v", hist.Record, want)
	}
	if n := query[Node](h, "node/"+node); n.JobsVerified != hist.Record.Settled || n.JobsFailed != hist.Record.Failed {
		t.Fatalf("history %+v disagrees with the node's counters %+v", hist.Record, n)
	}
	if len(hist.Entries) != 4 || hist.NextBefore != 0 {
		t.Fatalf("entries %+v next %d, want 4 and no next page", hist.Entries, hist.NextBefore)
	}
	slash := hist.Entries[0] // newest first
	if slash.Kind != HistorySlashed || slash.JobID != bad || slash.Amount != 50*omni || slash.Reason != "wrong result for "+bad || slash.Height == 0 {
		t.Fatalf("newest entry %+v, want the slash for %s", slash, bad)
	}
	for i, e := range hist.Entries[1:] {
		if e.Kind != HistorySettled || e.JobID != settled[2-i] || e.Paid != 46_500 || e.Reward != 25_000 {
			t.Fatalf("entry %d: %+v, want job %s settled", i+1, e, settled[2-i])
		}
		if e.Height >= hist.Entries[i].Height {
			t.Fatalf("entries not newest first: %+v", hist.Entries)
		}
	}

	// Pages of two join up to the whole list.
	var paged []NodeHistoryEntry
	before := int64(0)
	for page := 0; ; page++ {
		p := query[NodeHistory](h, fmt.Sprintf("node_history/%s/%d/2", node, before))
		if page > 3 || len(p.Entries) == 0 {
			t.Fatalf("page %d: %+v", page, p)
		}
		paged = append(paged, p.Entries...)
		if p.NextBefore == 0 {
			break
		}
		before = p.NextBefore
	}
	if fmt.Sprint(paged) != fmt.Sprint(hist.Entries) {
		t.Fatalf("paged %+v\nwant %+v", paged, hist.Entries)
	}

	// A node that never worked has an empty history; malformed queries are rejected.
	if e := query[NodeHistory](h, "node_history/"+string(addr(node2Key))); len(e.Entries) != 0 || e.Record != (NodeRecord{}) {
		t.Fatalf("idle node's history %+v", e)
	}
	for _, bad := range []string{"node_history/nope", "node_history/" + node + "/x", "node_history/" + node + "/0/0", "node_history/" + node + "/0/1000"} {
		if _, err := h.app.Query(bad); CodeFor(err) != CodeInvalidMsg {
			t.Errorf("%s: %v, want invalid", bad, err)
		}
	}
}

func TestValidatorRewardWindow(t *testing.T) {
	h := newHarness(t, testGenesis())
	h.mustDo(node1Key, registerMsg)
	for range 2 {
		id := runJob(t, h, 1*omni, 90_000)
		h.mustDo(validatorKey, Msg{Attest: &MsgAttest{JobID: id, ResultDigest: digestA, Pass: true, Ops: ampleOps, Transcript: aTranscript}})
	}
	w := query[RewardWindow](h, "validator_rewards")
	// Each job's fee of 2,500 gives 10% to the validators, paid out when its block ends.
	if w.Paid != 2*250 || w.Bonded != 10_000*omni || w.ToHeight != h.height || w.FromHeight != 1 || w.ToUnix <= w.FromUnix {
		t.Fatalf("window %+v at height %d", w, h.height)
	}

	// Old buckets leave the window: after it has passed, nothing paid is left.
	for range RewardWindowBlocks + RewardBucketBlocks {
		h.block()
	}
	w = query[RewardWindow](h, "validator_rewards")
	if w.Paid != 0 || w.ToHeight-w.FromHeight > RewardWindowBlocks {
		t.Fatalf("window after %d empty blocks: %+v", RewardWindowBlocks, w)
	}
}

// A slash that is not for a job's result (a wrong capacity proof) names no job in the
// node's history; one for a result names that job.
func TestHistorySlashNamesItsJobOnlyWhenItHasOne(t *testing.T) {
	for reason, job := range map[string]string{
		"wrong result for job-0123456789abcdef":  "job-0123456789abcdef",
		"wrong capacity proof: link 3 is forged": "",
	} {
		events := []Event{{Type: "slashed", Attrs: []Attr{{"account", "n"}, {"role", RoleNode}, {"amount", "5"}, {"reason", reason}}}}
		_, entry, ok, err := historyEntry(events, 0)
		if err != nil || !ok || entry.JobID != job || entry.Reason != reason || entry.Kind != HistorySlashed {
			t.Errorf("%q: entry %+v, %v %v; want job %q", reason, entry, ok, err, job)
		}
	}
}
