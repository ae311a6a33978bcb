package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

// withNodeHistory gives testAddr(4) a page of history with one of each kind, and more to
// read below it.
func withNodeHistory(d *fakeDaemon) {
	d.history = map[string]api.NodeHistory{testAddr(4): {
		Record: api.NodeRecord{Settled: 41, Failed: 2, Slashes: 1, Earned: 12_345_678, Slashed: 50_000_000, LastUnix: 1_767_225_900},
		Entries: []api.NodeHistoryEntry{
			{Height: 1207, Time: 1_767_225_900, Kind: ledger.HistorySlashed, JobID: "job-9", Amount: 50_000_000, Reason: "wrong result for job-9"},
			{Height: 1190, Time: 1_767_225_800, Kind: ledger.HistoryFailed, JobID: "job-8", Reason: "result outvoted by the replicas that agreed"},
			{Height: 1181, Time: 1_767_225_700, Kind: ledger.HistorySettled, JobID: "job-7", Paid: 294_000, Reward: 15_000},
		},
		NextBefore: 1181,
	}}
}

// node history asks for the page its flags name and says how to read the next one.
func TestNodeHistoryPages(t *testing.T) {
	e := newCLIEnv(t)
	e.daemon.with(withNodeHistory)
	out := e.ok("node", "history", testAddr(4), "--before", "1300", "--limit", "3")
	if e.daemon.asked != [2]int64{1300, 3} {
		t.Errorf("asked for before, limit = %v, want [1300 3]", e.daemon.asked)
	}
	if want := "omnisync node history " + testAddr(4) + " --before 1181 --limit 3"; !strings.Contains(out, want) {
		t.Errorf("output lacks the next page's command %q:\n%s", want, out)
	}
	e.ok("node", "history", testAddr(4))
	if e.daemon.asked != [2]int64{0, 0} {
		t.Errorf("without flags asked for %v, want the newest page at the server's default size", e.daemon.asked)
	}
}

func TestNodeHistoryErrorsSayWhatIsWrong(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "history", "not-an-address"}, "address"},
		{[]string{"node", "history", testAddr(4), testAddr(5)}, "node history takes at most one argument, NODE_ID: got 2"},
		{[]string{"node", "history", testAddr(4), "--limit", "500"}, "--limit 500: want 1 to 200"},
		{[]string{"node", "history", testAddr(4), "--before", "-1"}, "--before -1: want a block height"},
		{[]string{"node", "history"}, "omnisync wallet new node"}, // no such wallet: the node's is "node"
	} {
		if _, errOut, code := e.run(tt.args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to say %q", tt.args, code, errOut, tt.want)
		}
	}
	// With --output json an error is JSON on stdout too.
	if out, _, _ := e.run("node", "history", testAddr(4), "--limit", "500", "-o", "json"); !strings.Contains(out, `"code": "invalid"`) {
		t.Errorf("--output json error: %s", out)
	}
}

// Shell completion offers the registered nodes' ids for NODE_ID.
func TestNodeHistoryCompletesNodeIDs(t *testing.T) {
	e := newCLIEnv(t)
	out := e.ok("__complete", "node", "history", "")
	var ids []string
	for _, line := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(line, "\t"); ok {
			ids = append(ids, id)
		}
	}
	if !slices.Contains(ids, testAddr(1)) || !slices.Contains(ids, testAddr(4)) {
		t.Errorf("completion offered %q, want the nodes %s and %s", out, testAddr(1), testAddr(4))
	}
}
