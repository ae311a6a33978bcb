package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/ledger"
)

func TestStakeCommands(t *testing.T) {
	consKey := bytes.Repeat([]byte{0xab}, 32)
	tests := []struct {
		args []string
		want ledger.Msg
		out  string
	}{
		{[]string{"stake", "add", "--role", "node", "--amount", "250.5"},
			ledger.Msg{Stake: &ledger.MsgStake{Role: "node", Amount: 250_500_000}}, "staked 250.5 OMNI as node stake"},
		{[]string{"stake", "add", "--role", "validator", "--amount", "10000", "--pubkey", base64.StdEncoding.EncodeToString(consKey)},
			ledger.Msg{Stake: &ledger.MsgStake{Role: "validator", Amount: 10_000_000_000, PubKey: consKey}}, "as validator stake"},
		{[]string{"stake", "add", "--role", "validator", "--amount", "1", "--pubkey", hex.EncodeToString(consKey)},
			ledger.Msg{Stake: &ledger.MsgStake{Role: "validator", Amount: 1_000_000, PubKey: consKey}}, "as validator stake"},
		{[]string{"stake", "remove", "--role", "validator", "--amount", "0.5"},
			ledger.Msg{Unstake: &ledger.MsgUnstake{Role: "validator", Amount: 500_000}}, "unbonding 0.5 OMNI of validator stake"},
	}
	e := newCLIEnv(t)
	for _, tt := range tests {
		out := e.ok(tt.args...)
		if got := e.daemon.lastTx(t).Body.Msg; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%v sent %+v, want %+v", tt.args, got, tt.want)
		}
		if !strings.Contains(out, tt.out) {
			t.Errorf("%v printed %q, want %q", tt.args, out, tt.out)
		}
	}
}

// Mistakes are caught before anything is signed.
func TestStakeFlagErrors(t *testing.T) {
	e := newCLIEnv(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"stake", "add", "--amount", "1"}, `required flag(s) "role" not set`},
		{[]string{"stake", "add", "--role", "node"}, `required flag(s) "amount" not set`},
		{[]string{"stake", "add", "--role", "router", "--amount", "1"}, `--role "router": want node or validator`},
		{[]string{"stake", "add", "--role", "node", "--amount", "-5"}, "--amount: \"-5\" is negative"},
		{[]string{"stake", "add", "--role", "node", "--amount", "0"}, "--amount: must be positive"},
		{[]string{"stake", "add", "--role", "node", "--amount", "1", "--pubkey", "AAAA"}, "--pubkey is only for --role validator"},
		{[]string{"stake", "add", "--role", "validator", "--amount", "1", "--pubkey", "AAAA"}, "--pubkey: want the 32-byte"},
		{[]string{"stake", "remove", "--role", "node", "--amount", "1", "--pubkey", "AAAA"}, "unknown flag: --pubkey"},
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
