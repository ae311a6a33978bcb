package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// pathRecorder is an RPC client that notes the path of every ABCI query; answer, when set,
// answers them in place of the client it wraps.
type pathRecorder struct {
	rpcAPI
	answer func(path string) abci.QueryResponse

	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error) {
	p.mu.Lock()
	p.paths = append(p.paths, path)
	p.mu.Unlock()
	if p.answer != nil {
		return &ctypes.ResultABCIQuery{Response: p.answer(path)}, nil
	}
	return p.rpcAPI.ABCIQuery(ctx, path, data)
}

func (p *pathRecorder) asked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.paths)
}

// A job read into a ledger.Job, or an account into a ledger.Account, is asked for as its
// stored record, in-process and over HTTP, and reads as the very job or account that the
// JSON gives; a job never created is not found, an account never written has nothing.
func TestQueryReadsAJobAsItsRecord(t *testing.T) {
	home := t.TempDir()
	alice := testKey(1)
	initSingle(t, home, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startNode(t, home)
	s := NewSigner(n.Client(), alice, "omnisync-chaintest")
	seq, err := n.Client().NextSequence(ctx, keys.AddressOfKey(alice))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: fmt.Sprintf("sha256:%064x", 1), Budget: ledger.UomniPerOMNI, MaxPricePerHour: ledger.UomniPerOMNI,
		Verification: ledger.VerifyFreivalds, TimeoutSeconds: 600,
	}}); err != nil {
		t.Fatal(err)
	}
	id := ledger.JobID(keys.AddressOfKey(alice), seq)

	rec := &pathRecorder{rpcAPI: n.Client().rpc}
	c := &Client{rpc: rec}
	var raw json.RawMessage
	if err := c.Query(ctx, "job/"+id, &raw); err != nil {
		t.Fatal(err)
	}
	var want ledger.Job
	if err := json.Unmarshal(raw, &want); err != nil || want.ID != id || want.Status != ledger.JobCreated {
		t.Fatalf("job/%s answered %s (%v)", id, raw, err)
	}
	var got ledger.Job
	if err := c.Query(ctx, "job/"+id, &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("job read as %+v (%v), want %+v", got, err, want)
	}
	if asked := rec.asked(); !slices.Equal(asked, []string{"job/" + id, "job_record/" + id}) {
		t.Fatalf("asked %q, want JSON for the raw message and the record for the job", asked)
	}
	hc, err := NewHTTPClient(n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := hc.Job(ctx, id); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("over HTTP the job reads as %+v (%v), want %+v", got, err, want)
	}
	if err := c.Query(ctx, "job/nope", &got); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a job never created: %v, want ErrNotFound", err)
	}

	// Accounts alike, one never written too.
	for _, a := range []keys.Address{keys.AddressOfKey(alice), keys.AddressOfKey(testKey(2))} {
		var raw json.RawMessage
		var want ledger.Account
		if err := c.Query(ctx, "account/"+string(a), &raw); err != nil || json.Unmarshal(raw, &want) != nil {
			t.Fatalf("account/%s answered %s (%v)", a, raw, err)
		}
		for _, c := range []*Client{c, hc} {
			if got, err := c.Account(ctx, a); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("account read as %+v (%v), want %+v", got, err, want)
			}
		}
	}
	if asked := rec.asked()[3:]; !slices.Equal(asked, []string{
		"account/" + string(keys.AddressOfKey(alice)), "account_record/" + string(keys.AddressOfKey(alice)),
		"account/" + string(keys.AddressOfKey(testKey(2))), "account_record/" + string(keys.AddressOfKey(testKey(2))),
	}) {
		t.Fatalf("asked %q, want JSON for the raw messages and records for the accounts", asked)
	}
	if _, err := c.Account(ctx, "x"); !errors.Is(err, ledger.ErrInvalidMsg) {
		t.Fatalf("an address that is none: %v, want ErrInvalidMsg", err)
	}
}

// A chain node that does not know job_record/<id> (an older one) is asked for JSON, and
// after one such answer no longer asked for records of any kind.
func TestQueryReadsJSONFromANodeWithoutRecords(t *testing.T) {
	want := ledger.Job{ID: "J", Consumer: "omni1x", Status: ledger.JobSettled, Settlement: &ledger.Settlement{Paid: 3}}
	answer := func(path string) abci.QueryResponse {
		switch path {
		case "job/J":
			b, _ := json.Marshal(want)
			return abci.QueryResponse{Value: b}
		case "account/omni1a":
			return abci.QueryResponse{Value: []byte(`{"address":"omni1a","balance":7,"seq":2,"spendable":7}`)}
		case "job/K":
			err := fmt.Errorf("%w: job K", ledger.ErrNotFound)
			return abci.QueryResponse{Code: uint32(ledger.CodeFor(err)), Log: err.Error()}
		}
		err := fmt.Errorf("%w: unknown query path %q", ledger.ErrNotFound, path)
		return abci.QueryResponse{Code: uint32(ledger.CodeFor(err)), Log: err.Error()}
	}
	rec := &pathRecorder{answer: answer}
	c := &Client{rpc: rec}
	for range 2 {
		var got ledger.Job
		if err := c.Query(context.Background(), "job/J", &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("job read as %+v (%v), want %+v", got, err, want)
		}
	}
	var got ledger.Job
	if err := c.Query(context.Background(), "job/K", &got); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("a job never created: %v, want ErrNotFound", err)
	}
	if acc, err := c.Account(context.Background(), "omni1a"); err != nil || acc != (ledger.Account{Address: "omni1a", Balance: 7, Seq: 2}) {
		t.Fatalf("account read as %+v (%v)", acc, err)
	}
	if asked := rec.asked(); !slices.Equal(asked, []string{"job_record/J", "job/J", "job/J", "job/K", "account/omni1a"}) {
		t.Fatalf("asked %q, want one record query, then JSON", asked)
	}
}

// BenchmarkClientQueryJob is a read of a job through an in-process chain node's RPC
// client, as JSON (the client told the node answers no records) and as the record.
func BenchmarkClientQueryJob(b *testing.B) {
	home := b.TempDir()
	alice := testKey(1)
	initSingle(b, home, alice)
	n, err := New(Options{Home: home, BlockTime: 100 * time.Millisecond, EmptyBlockInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = n.Close() })
	if _, err := NewSigner(n.Client(), alice, "omnisync-chaintest").Submit(ctx, ledger.Msg{CreateJob: &ledger.MsgCreateJob{
		SpecHash: fmt.Sprintf("sha256:%064x", 1), Budget: ledger.UomniPerOMNI, MaxPricePerHour: ledger.UomniPerOMNI,
		Verification: ledger.VerifyChallenge, TimeoutSeconds: 600,
	}}); err != nil {
		b.Fatal(err)
	}
	id := ledger.JobID(keys.AddressOfKey(alice), 0)
	for _, records := range []bool{false, true} {
		name := map[bool]string{false: "json", true: "record"}[records]
		b.Run(name, func(b *testing.B) {
			c := &Client{rpc: n.Client().rpc}
			c.noRecords.Store(!records)
			b.ReportAllocs()
			for b.Loop() {
				var j ledger.Job
				if err := c.Query(ctx, "job/"+id, &j); err != nil || j.ID != id {
					b.Fatal(err)
				}
			}
		})
	}
}
