package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

func TestGovCommands(t *testing.T) {
	weights := `{"compute":4000,"latency":3000,"reliability":2000,"price":1000}`
	tests := []struct {
		args []string
		want ledger.Msg
		out  string
	}{
		{[]string{"gov", "propose", "--title", "Burn 3%", "--description", "why not", "--param", "burn_bp=300", "--param", "router_weights=" + weights},
			ledger.Msg{Propose: &ledger.MsgPropose{Title: "Burn 3%", Description: "why not", Params: map[string]json.RawMessage{
				"burn_bp": json.RawMessage("300"), "router_weights": json.RawMessage(weights)}}},
			"proposal #3 \"Burn 3%\" is open for votes until height 142\n  tx "},
		{[]string{"gov", "propose", "--title", "Grant", "--spend-to", testAddr(5), "--spend-amount", "25000"},
			ledger.Msg{Propose: &ledger.MsgPropose{Title: "Grant", Spend: &ledger.Spend{To: keys.Address(testAddr(5)), Amount: 25_000_000_000}}},
			"gov vote 3 yes -w default --api "}, // a fresh daemon each time
		{[]string{"gov", "vote", "2", "abstain"},
			ledger.Msg{Vote: &ledger.MsgVote{ProposalID: 2, Option: "abstain"}}, "voted abstain on proposal #2"},
	}
	for _, tt := range tests {
		e := newCLIEnv(t)
		out := e.ok(tt.args...)
		if got := e.daemon.lastTx(t).Body.Msg; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v sent %+v, want %+v", tt.args, got, tt.want)
		}
		if !strings.Contains(out, tt.out) {
			t.Errorf("%v printed %q, want %q", tt.args, out, tt.out)
		}
	}

	e := newCLIEnv(t)
	var r struct {
		txReceipt
		ProposalID uint64 `json:"proposal_id"`
	}
	if err := json.Unmarshal([]byte(e.ok("gov", "propose", "--title", "t", "--param", "fee_bp=400", "-o", "json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.ProposalID != 3 || r.Hash == "" || r.From != testAddr(1) {
		t.Errorf("JSON receipt %+v", r)
	}
}

func TestGovFlagErrors(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"gov", "propose", "--param", "burn_bp=300"}, `required flag(s) "title" not set`},
		{[]string{"gov", "propose", "--title", "t"}, "say what the proposal does"},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bp=300", "--spend-to", testAddr(5), "--spend-amount", "1"}, "not both"},
		{[]string{"gov", "propose", "--title", "t", "--spend-to", testAddr(5)}, "needs both --spend-to and --spend-amount"},
		{[]string{"gov", "propose", "--title", "t", "--spend-to", testAddr(5), "--spend-amount", "1.5.0"}, "--spend-amount:"},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bp"}, "want name=value"},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bp=lots"}, "is not a JSON value"},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bp=1", "--param", "burn_bp=2"}, "given twice"},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bps=300"}, `unknown parameter "burn_bps"`},
		{[]string{"gov", "propose", "--title", "t", "--param", "burn_bp=20000"}, "burn_bp is 20000, above 10000"},
		{[]string{"gov", "vote", "one", "yes"}, `proposal id "one"`},
		{[]string{"gov", "vote", "1", "maybe"}, "option must be yes, no or abstain"},
		{[]string{"gov", "show", "99"}, "proposal 99 not found"},
	} {
		if _, errOut, code := e.run(tt.args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
	e.daemon.with(func(d *fakeDaemon) {
		if len(d.txs) != 0 {
			t.Errorf("%d transactions sent", len(d.txs))
		}
	})
}
