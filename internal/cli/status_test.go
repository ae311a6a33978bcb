package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/ledger"
)

// status turns a proposal's closing height into a time, from the chain's block time.
func TestStatusReadsVotingEndsAsATime(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st := networkStatus{
		Chain:  &chain.Status{ChainID: "omnisync-x", Height: 100, Time: now.Add(-300 * time.Millisecond), BlockTime: 250 * time.Millisecond},
		Router: map[string]string{"chain_id": "omnisync-x", "cluster_peers": "router-2,router-3"}, Routers: []string{"a", "b", "c"},
		Nodes: 5, NodesOnline: 4, GPUsOnline: map[string]int{"H200": 8, "RTX 4090": 1}, GPUsFree: 6,
		Validators: 4, Staked: 40_000 * ledger.UomniPerOMNI,
		Supply: api.Supply{Total: 1e9 * ledger.UomniPerOMNI, Burned: 12 * ledger.UomniPerOMNI},
		Voting: []api.Proposal{{ID: 3, Title: "burn 1.5%", VotingEnd: 145, Yes: 30_000 * ledger.UomniPerOMNI}},
		Work: &api.RouterStats{WindowSeconds: 600, SettledInWindow: 42, SettledPerMinute: 4.2, Waiting: 3, Running: 5,
			PlacementP50Ms: 2.4, PlacementP90Ms: 9.6},
	}
	var out bytes.Buffer
	printStatus(&out, st, now)
	for _, want := range []string{
		"omnisync-x at height 100, latest block 300ms ago, lately a block every 250ms",
		"3 on chain; this one's cluster peers: router-2,router-3",
		"4 online of 5 registered; GPUs online: 1× RTX 4090, 8× H200 (6 free)",
		"4 active, 40000 OMNI staked",
		"12 OMNI burned",
		`#3 "burn 1.5%": voting ends at height 145 (in 45 blocks, about 11s)`,
		"42 settled in the last 10m0s (4.2 a minute), 3 waiting for a node, 5 running; placement p50 2 ms, p90 10 ms",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	st.Chain, st.ChainError = nil, "chain RPC http://x: refused"
	out.Reset()
	printStatus(&out, st, now)
	if !strings.Contains(out.String(), "omnisync-x — chain RPC http://x: refused") || !strings.Contains(out.String(), "ends at height 145 —") {
		t.Errorf("without the chain RPC:\n%s", out.String())
	}
}

func TestNodeListShowsStateHardwareAndReliability(t *testing.T) {
	var out bytes.Buffer
	printNodeList(&out, []api.Node{
		{ID: "4TWLMELZShDxz41cjJwL3nWxCUtd2h1vgR3WS2b2MXqM", GPUModel: "H200", GPUs: 8, FreeGPUs: 6, VRAMMiB: 143_771, TFLOPS: 989.5,
			Region: "eu-central", PricePerHour: 2_400_000, Status: "active", Online: true, JobsVerified: 9, JobsFailed: 1, Containers: "docker"},
		{ID: "Fb5ppDxbfyT8sYFRkCobpb2yxrnS6D4MBAoDBKRYy9vs", GPUModel: "RTX 4090", GPUs: 1, VRAMMiB: 24_576, TFLOPS: 82.6,
			Region: "us-east", PricePerHour: 400_000, Status: "inactive", Containers: "process", Unsandboxed: true},
	})
	for _, want := range []string{"NODE", "4TWLME…MXqM", "online", "8× H200", "140GB", "989.5", "90% of 10", "docker",
		"offline, inactive", "process (unsandboxed)", "2.4 OMNI"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("node list lacks %q:\n%s", want, out.String())
		}
	}
}
