package devnet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/runtime"
	"github.com/omnisync/omnisync/internal/tensor"
)

func startDevnet(t *testing.T, home string, rt func(int) runtime.Runtime) *Devnet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{Home: home, BlockTime: 100 * time.Millisecond, NodeRuntime: rt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// books is a snapshot of the balances a job moves.
type books struct {
	consumer  uint64
	validator uint64
	nodes     map[string]uint64
	supply    ledger.SupplyView
}

func snapshot(t *testing.T, ctx context.Context, d *Devnet) books {
	t.Helper()
	b := books{nodes: map[string]uint64{}}
	acc, err := d.Chain().Account(ctx, keys.AddressOfKey(d.Keys.Consumer))
	if err != nil {
		t.Fatal(err)
	}
	b.consumer = acc.Balance
	if acc, err = d.Chain().Account(ctx, keys.AddressOfKey(d.Keys.Validator)); err != nil {
		t.Fatal(err)
	}
	b.validator = acc.Balance
	for _, id := range d.NodeIDs() {
		acc, err := d.Chain().Account(ctx, keys.Address(id))
		if err != nil {
			t.Fatal(err)
		}
		b.nodes[id] = acc.Balance
	}
	if err := d.Chain().Query(ctx, "supply", &b.supply); err != nil {
		t.Fatal(err)
	}
	total, err := b.supply.Sum()
	if err != nil || total != b.supply.Total || b.supply.Total != ledger.GenesisSupply {
		t.Fatalf("supply not conserved: buckets add to %d, total %d (%v)", total, b.supply.Total, err)
	}
	return b
}

func TestDemoJobSettlesWithExactBalanceChanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	home := t.TempDir()
	d := startDevnet(t, home, nil)
	before := snapshot(t, ctx, d)

	o, err := d.RunDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != api.StatusSettled || !o.Verified || o.Verdict != "pass" {
		t.Fatalf("demo outcome %+v", o)
	}
	wantDemoMetrics(t, d)
	for _, k := range []string{"create", "assign", "result", "attest"} {
		if len(o.Txs[k]) != 64 {
			t.Errorf("tx hash for %s missing: %v", k, o.Txs)
		}
	}
	after := snapshot(t, ctx, d)

	// Recompute the settlement from the chain's own record and parameters.
	job, err := d.Chain().Job(ctx, o.JobID)
	if err != nil {
		t.Fatal(err)
	}
	var params ledger.Params
	if err := d.Chain().Query(ctx, "params", &params); err != nil {
		t.Fatal(err)
	}
	want, err := ledger.SettlementFor(params, job)
	if err != nil {
		t.Fatal(err)
	}
	cost := o.PaidUomni + o.BurnedUomni + o.FeeUomni
	switch {
	case want.Paid != o.PaidUomni || want.Burned != o.BurnedUomni || want.Fee != o.FeeUomni || want.Refunded != o.RefundedUomni:
		t.Fatalf("reported split %+v, ledger rules give %+v", o, want)
	case cost+o.RefundedUomni != o.BudgetUomni:
		t.Fatalf("split does not add up to the budget: %+v", o)
	case o.BurnedUomni != (cost*params.BurnBP+9_999)/10_000:
		t.Fatalf("burned %d is not 2%% of %d rounded up", o.BurnedUomni, cost)
	case cost == 0:
		t.Fatal("the node was paid nothing")
	}
	if got := before.consumer - after.consumer; got != cost {
		t.Errorf("consumer paid %d, want cost %d (budget %d minus refund %d)", got, cost, o.BudgetUomni, o.RefundedUomni)
	}
	for id, bal := range after.nodes {
		delta := bal - before.nodes[id]
		if id == o.NodeID && delta != o.PaidUomni+o.RewardUomni {
			t.Errorf("chosen node got %d, want payment %d + network reward %d", delta, o.PaidUomni, o.RewardUomni)
		}
		if id != o.NodeID && delta != 0 {
			t.Errorf("node %s was not chosen but its balance moved by %d", id, delta)
		}
	}
	if got := after.supply.Burned - before.supply.Burned; got != o.BurnedUomni {
		t.Errorf("supply burned grew by %d, want %d", got, o.BurnedUomni)
	}
	// The fee is split: validators (here the one validator), buy-back fund, treasury.
	feeTo := after.supply.Pools[ledger.PoolBuyback] - before.supply.Pools[ledger.PoolBuyback] +
		after.supply.Pools[ledger.PoolEcosystem] - before.supply.Pools[ledger.PoolEcosystem] +
		after.validator - before.validator
	if feeTo != o.FeeUomni {
		t.Errorf("fee %d went %d to validators, buy-back and treasury together", o.FeeUomni, feeTo)
	}
	if o.RewardUomni == 0 || before.supply.Pools[ledger.PoolRewards]-after.supply.Pools[ledger.PoolRewards] != o.RewardUomni {
		t.Errorf("network reward %d not drawn from the rewards pool", o.RewardUomni)
	}
	if after.supply.Escrowed != before.supply.Escrowed {
		t.Errorf("escrow left behind: %d -> %d", before.supply.Escrowed, after.supply.Escrowed)
	}

	// A restart with the same home resumes the same chain: height and balances survive.
	height, err := d.Chain().Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d2 := startDevnet(t, home, nil)
	h2, err := d2.Chain().Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h2 < height {
		t.Fatalf("restarted at height %d, below %d", h2, height)
	}
	resumed := snapshot(t, ctx, d2)
	if resumed.consumer != after.consumer || resumed.supply.Burned != after.supply.Burned {
		t.Fatalf("balances changed across restart: %+v vs %+v", resumed, after)
	}
	if got, err := api.NewClient(d2.RESTURL()).Job(ctx, o.JobID); err != nil || got.Status != api.StatusSettled {
		t.Fatalf("job after restart: %+v %v", got, err)
	}
}

// tamperer computes honestly, then changes one element of the product: the kind of
// fraud Freivalds' check must catch.
type tamperer struct{ runtime.Native }

func (tamperer) Name() string { return "tampering" }

func (t tamperer) Run(ctx context.Context, task runtime.Task) (runtime.Result, error) {
	res, err := t.Native.Run(ctx, task)
	if err != nil {
		return res, err
	}
	c, err := tensor.DecodeInt32(res.Output)
	if err != nil {
		return res, err
	}
	c.Data[len(c.Data)/2+7]++
	res.Output, err = c.MarshalBinary()
	return res, err
}

func TestTamperedResultFailsVerificationAndRefunds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), func(int) runtime.Runtime { return tamperer{} })
	before := snapshot(t, ctx, d)

	o, err := d.RunDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != api.StatusFailed || o.Verified {
		t.Fatalf("tampered job: status %s verified %v", o.Status, o.Verified)
	}
	if !strings.HasPrefix(o.Verdict, "fail") {
		t.Fatalf("verdict %q", o.Verdict)
	}
	if o.PaidUomni != 0 || o.RefundedUomni != o.BudgetUomni {
		t.Fatalf("tampered job paid %d, refunded %d of %d", o.PaidUomni, o.RefundedUomni, o.BudgetUomni)
	}
	after := snapshot(t, ctx, d)
	if after.consumer != before.consumer {
		t.Fatalf("consumer balance %d -> %d: refund not in full", before.consumer, after.consumer)
	}
	for id, bal := range after.nodes {
		if bal != before.nodes[id] {
			t.Fatalf("node %s was paid for a wrong result", id)
		}
	}
	if after.supply.Escrowed != before.supply.Escrowed {
		t.Fatal("a failed job left escrow behind")
	}
	// The node's stake is slashed by fraud_slash_bp (10% of 500 OMNI): half rewards the
	// validator that caught it, half is burned; below the minimum it takes no more work.
	var n ledger.Node
	if err := d.Chain().Query(ctx, "node/"+o.NodeID, &n); err != nil || n.JobsFailed != 1 {
		t.Fatalf("node record %+v %v", n, err)
	}
	const slashed = 50 * ledger.UomniPerOMNI
	if n.Stake != nodeStake-slashed || n.Status != ledger.NodeInactive {
		t.Fatalf("node stake %d status %s after fraud, want %d inactive", n.Stake, n.Status, nodeStake-slashed)
	}
	if after.supply.Burned-before.supply.Burned != slashed/2 || after.validator-before.validator != slashed/2 {
		t.Fatalf("slash split: burned %d, validator got %d; want %d each",
			after.supply.Burned-before.supply.Burned, after.validator-before.validator, slashed/2)
	}
}

func TestBadSubmissionsEscrowNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), nil)
	c := api.NewClient(d.RESTURL())
	spec, data, err := DemoSpec(42)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, ctx, d)

	t.Run("malformed spec names the field", func(t *testing.T) {
		bad := spec
		bad.Resources.GPUs = 0
		_, err := SubmitSigned(ctx, c, d.Keys.Consumer, ChainID, bad, data)
		var fe *api.FieldError
		if !errors.As(err, &fe) || fe.Field != "spec.resources.gpus" {
			t.Fatalf("err = %v, want a field error on resources.gpus", err)
		}
	})
	t.Run("spec altered after signing", func(t *testing.T) {
		acc, _ := c.Account(ctx, string(keys.AddressOfKey(d.Keys.Consumer)))
		tx, _ := ledger.SignTx(d.Keys.Consumer, ChainID, acc.Seq, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
			SpecHash: spec.Hash(), Budget: spec.Budget, MaxPricePerHour: spec.MaxPricePerHour,
			Verification: spec.Verification, TimeoutSeconds: spec.TimeoutSeconds,
		}})
		altered := spec
		altered.MaxPricePerHour *= 10
		_, err := c.SubmitJob(ctx, api.SubmitJobRequest{Spec: altered, InputData: data, Tx: tx})
		var fe *api.FieldError
		if !errors.As(err, &fe) || fe.Field != "tx" {
			t.Fatalf("err = %v, want a field error on tx", err)
		}
	})
	t.Run("consumer without funds", func(t *testing.T) {
		poor := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
		_, err := SubmitSigned(ctx, c, poor, ChainID, spec, data)
		if !errors.Is(err, api.ErrInsufficientFunds) {
			t.Fatalf("err = %v, want ErrInsufficientFunds", err)
		}
		if !strings.Contains(err.Error(), "nothing was escrowed") {
			t.Fatalf("error does not say what happened: %v", err)
		}
	})
	t.Run("inputs that do not fit the kernel", func(t *testing.T) {
		m, _ := tensor.RandomInt8(3, 5, 1)
		b, _ := m.MarshalBinary()
		odd := spec
		odd.Inputs = append([]api.Input{}, spec.Inputs...)
		odd.Inputs[1] = api.Input{Name: "b", Digest: api.DigestOf(b), Size: int64(len(b))}
		_, err := SubmitSigned(ctx, c, d.Keys.Consumer, ChainID, odd, map[string][]byte{"a": data["a"], "b": b})
		var fe *api.FieldError
		if !errors.As(err, &fe) || fe.Field != "spec.inputs" {
			t.Fatalf("err = %v, want a field error on inputs", err)
		}
	})
	after := snapshot(t, ctx, d)
	if after.supply.Escrowed != before.supply.Escrowed || after.consumer != before.consumer {
		t.Fatalf("a rejected submission moved money: %+v -> %+v", before, after)
	}
}

func TestBroadcastReportsTheCommittingBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), nil)
	c := api.NewClient(d.RESTURL())
	acc, err := c.Account(ctx, string(keys.AddressOfKey(d.Keys.Consumer)))
	if err != nil {
		t.Fatal(err)
	}
	before, err := d.Chain().Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := ledger.SignTx(d.Keys.Consumer, ChainID, acc.Seq, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(d.Keys.Router), Amount: ledger.UomniPerOMNI}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.BroadcastTx(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash != ledger.HashHex(tx) || res.Height <= before {
		t.Fatalf("broadcast answered %+v; want hash %s and a height above %d", res, ledger.HashHex(tx), before)
	}
}
