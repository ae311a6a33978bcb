package devnet

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/transport"
	"github.com/omnisync/omnisync/internal/transport/transporttest"
)

// TestOutsiderNodeCannotTouchAnHonestJob is issue #8's attack, end to end: a supplier
// registered and staked like any other, but running a program built from the transport
// package instead of the node daemon, knows the demo job's inputs and even its exact
// output, and tries to read the inputs, enumerate the store, poison the output's name
// and write for the job. All of it fails, the job settles verified, the honest node is
// paid and nobody is slashed; and once the outsider unstakes, the router drops its
// connection.
func TestOutsiderNodeCannotTouchAnHonestJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	home := t.TempDir()
	d := startDevnet(t, home, nil)

	// The outsider: funded by the consumer, registered with a price no job accepts, so
	// it is never chosen and everything it gets it must take.
	key := transporttest.Key(t)
	addr := keys.AddressOfKey(key)
	consumer := chain.NewWallet(d.Chain(), d.Keys.Consumer, ChainID)
	if _, err := consumer.Send(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: addr, Amount: 600 * omni}}); err != nil {
		t.Fatal(err)
	}
	outsider := chain.NewWallet(d.Chain(), key, ChainID)
	if _, err := outsider.Send(ctx, ledger.Msg{RegisterNode: &ledger.MsgRegisterNode{
		Stake: nodeStake, PricePerHour: 1_000_000 * omni,
		Hardware: ledger.Hardware{GPUModel: "sim H100", GPUs: 8, VRAMMiB: 81_920, TFLOPSMilli: 989_000, Region: "eu-central"},
	}}); err != nil {
		t.Fatal(err)
	}
	files, err := transport.EnsureTLS(filepath.Join(home, "tls"), nil)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := files.ClientRootCAs()
	if err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 32)
	conn, err := transport.Dial(ctx, transport.DialOptions{URL: d.NodesURL(), Key: key, RootCAs: roots, Name: "outsider",
		OnError: func(err error) {
			if errors.Is(err, transport.ErrPermissionDenied) {
				denied <- err
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dropped := make(chan struct{}, 1)
	conn.SetDisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case dropped <- struct{}{}:
		default:
		}
	})
	blobs := transport.Blobs{Conn: conn, ID: string(addr), Bucket: protocol.BlobBucket, Server: string(keys.AddressOfKey(d.Keys.Router))}

	// What the next demo job will be, and the output an honest node will store for it.
	acc, err := api.NewClient(d.RESTURL()).Account(ctx, string(keys.AddressOfKey(d.Keys.Consumer)))
	if err != nil {
		t.Fatal(err)
	}
	spec, data, err := DemoSpec(acc.Seq + 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b, err := tensor.DecodeMatMulInt8Inputs([][]byte{data["a"], data["b"]})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := tensor.MatMulInt8(a, b)
	output, _ := c.MarshalBinary()
	outputName := transport.Digest(output)[len(transport.DigestPrefix):]

	overheard := make(chan *nats.Msg, 256)
	if _, err := conn.ChanSubscribe("_INBOX.>", overheard); err != nil {
		t.Fatal(err)
	}
	_ = conn.Publish("$O."+protocol.BlobBucket+".M."+outputName, []byte(`{"name":"`+outputName+`","size":1}`))
	_ = conn.Publish("$JS.API.DIRECT.GET.OBJ_"+protocol.BlobBucket, []byte(`{"seq":1}`))
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}

	done := make(chan Outcome, 1)
	go func() {
		o, err := d.RunDemo(ctx, nil)
		if err != nil {
			t.Error(err)
		}
		done <- o
	}()
	// While the job runs: try the inputs, and write for whatever job is running.
	var outcome Outcome
	for attempts := 0; ; attempts++ {
		for _, in := range spec.Inputs {
			if got, err := blobs.Get(ctx, in.Digest); !errors.Is(err, transport.ErrForbidden) {
				t.Fatalf("outsider read input %s: %d bytes, %v", in.Name, len(got), err)
			}
		}
		select {
		case outcome = <-done:
		case <-time.After(50 * time.Millisecond):
			continue
		}
		break
	}
	if _, err := blobs.Put(ctx, outcome.JobID, []byte("junk")); !errors.Is(err, transport.ErrForbidden) {
		t.Fatalf("outsider wrote for the job: %v", err)
	}
	if outcome.Status != api.StatusSettled || !outcome.Verified || outcome.PaidUomni == 0 {
		t.Fatalf("the honest job did not settle verified and paid: %+v", outcome)
	}
	if len(denied) < 3 {
		t.Fatalf("%d permission denials reported, want one each for _INBOX.>, metadata and direct get", len(denied))
	}
	select {
	case m := <-overheard:
		t.Fatalf("outsider overheard %s", m.Subject)
	default:
	}
	for _, id := range d.NodeIDs() {
		var n ledger.Node
		if err := d.Chain().Query(ctx, "node/"+id, &n); err != nil {
			t.Fatal(err)
		}
		if n.Stake != nodeStake || n.Status != ledger.NodeActive || n.JobsFailed != 0 {
			t.Fatalf("honest node %s was punished: %+v", id, n)
		}
	}

	// Rights follow the chain: once it unstakes, the router drops it.
	if _, err := outsider.Send(ctx, ledger.Msg{Unstake: &ledger.MsgUnstake{Role: ledger.RoleNode, Amount: nodeStake}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-dropped:
	case <-time.After(5 * time.Second):
		t.Fatal("the router kept an unstaked node connected")
	}
}
