package chain

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// memoryChain is the ABCI app over an in-memory ledger with one committed block in which
// testKey(1) holds 1,000 OMNI, and the app hash of that block's state.
func memoryChain(t testing.TB) (*abciApp, []byte) {
	t.Helper()
	st := store.OpenMemory()
	app, err := ledger.New(st)
	if err != nil {
		t.Fatal(err)
	}
	g := ledger.Genesis{
		Supply:     11_000 * ledger.UomniPerOMNI,
		Params:     ledger.DefaultParams(),
		Accounts:   []ledger.GenesisAccount{{Address: keys.AddressOfKey(testKey(1)), Balance: 1_000 * ledger.UomniPerOMNI}},
		Validators: []ledger.Validator{{Address: keys.AddressOfKey(testKey(9)), PubKey: []byte(testKey(9).Public().(ed25519.PublicKey)), Stake: 10_000 * ledger.UomniPerOMNI}},
	}
	genesis, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := app.InitChain("omnisync-prooftest", genesis); err != nil {
		t.Fatal(err)
	}
	if _, err := app.FinalizeBlock(ledger.Block{Height: 1, Time: time.Unix(1_700_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	_, hash, err := app.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return &abciApp{app: app, store: st}, hash
}

func proveQuery(t testing.TB, a *abciApp, addr keys.Address) *abci.QueryResponse {
	t.Helper()
	res, err := a.Query(context.Background(), &abci.QueryRequest{Path: "account/" + string(addr), Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A tampered answer to a proof query, from a node that lies about an account, fails the
// client's verification; the honest one passes, for a present and an absent account.
func TestProofQueryVerifiesAndTamperingIsCaught(t *testing.T) {
	a, appHash := memoryChain(t)
	alice, nobody := keys.AddressOfKey(testKey(1)), keys.AddressOfKey(testKey(2))

	res := proveQuery(t, a, alice)
	if res.Code != 0 || res.Height != 1 || res.ProofOps == nil {
		t.Fatalf("proof query: code %d %q, height %d, ops %v", res.Code, res.Log, res.Height, res.ProofOps)
	}
	acc, err := verifyAccount(alice, res, appHash)
	if err != nil || acc.Balance != 1_000*ledger.UomniPerOMNI || acc.Address != alice {
		t.Fatalf("honest proof: %+v, %v", acc, err)
	}
	if acc, err := verifyAccount(nobody, proveQuery(t, a, nobody), appHash); err != nil || acc.Balance != 0 {
		t.Fatalf("honest absence proof: %+v, %v", acc, err)
	}

	proof, err := store.DecodeProof(res.ProofOps.Ops[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	rich, err := ledger.DecodeAccount(alice, res.Value)
	if err != nil {
		t.Fatal(err)
	}
	rich.Balance *= 1000
	richValue, _ := json.Marshal(rich) // a record the ledger would read, with another balance
	withOps := func(p store.Proof) *cmtcrypto.ProofOps {
		return &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: res.Key, Data: p.Encode()}}}
	}
	tampered := map[string]func(r *abci.QueryResponse){
		"value changed": func(r *abci.QueryResponse) { r.Value = richValue },
		"value changed in the proof too": func(r *abci.QueryResponse) {
			p := proof
			p.Leaves = slices.Clone(p.Leaves)
			for i := range p.Leaves {
				if bytes.Equal(p.Leaves[i].Key, res.Key) {
					p.Leaves[i].Value = richValue
				}
			}
			r.Value, r.ProofOps = richValue, withOps(p)
		},
		"account's leaf left out to show it absent": func(r *abci.QueryResponse) {
			p := proof
			p.Leaves = nil
			r.Value, r.ProofOps = nil, withOps(p)
		},
		"sibling changed": func(r *abci.QueryResponse) {
			p := proof
			p.Siblings = slices.Clone(p.Siblings)
			p.Siblings[3][0] ^= 1
			r.ProofOps = withOps(p)
		},
		"another account's proof": func(r *abci.QueryResponse) { r.ProofOps = proveQuery(t, a, nobody).ProofOps },
		"no proof":                func(r *abci.QueryResponse) { r.ProofOps = nil },
		"proof data cut short": func(r *abci.QueryResponse) {
			r.ProofOps = withOps(proof)
			r.ProofOps.Ops[0].Data = r.ProofOps.Ops[0].Data[:10]
		},
		"wrong op type": func(r *abci.QueryResponse) {
			r.ProofOps = withOps(proof)
			r.ProofOps.Ops[0].Type = "ics23:iavl"
		},
	}
	for name, tamper := range tampered {
		r := *res
		tamper(&r)
		if acc, err := verifyAccount(alice, &r, appHash); !errors.Is(err, store.ErrBadProof) {
			t.Errorf("%s: verified as %+v, %v; want ErrBadProof", name, acc, err)
		}
	}
	// An honest answer against another state's app hash fails too.
	other := slices.Clone(appHash)
	other[0] ^= 1
	if _, err := verifyAccount(alice, res, other); !errors.Is(err, store.ErrBadProof) {
		t.Errorf("proof verified against another app hash: %v", err)
	}
}

// Between FinalizeBlock and Commit the store holds a staged block and cannot prove the
// committed state; the query says to ask again instead of failing or proving the wrong
// state, and the proof serves again once the block commits.
func TestProofQueryWhileABlockIsStaged(t *testing.T) {
	a, _ := memoryChain(t)
	alice := keys.AddressOfKey(testKey(1))
	if _, err := a.app.FinalizeBlock(ledger.Block{Height: 2, Time: time.Unix(1_700_000_001, 0)}); err != nil {
		t.Fatal(err)
	}
	if res := proveQuery(t, a, alice); res.Codespace != proofCodespace || res.Code != codeProofBusy {
		t.Fatalf("proof query with a staged block: code %d/%q %q", res.Code, res.Codespace, res.Log)
	}
	if _, _, err := a.app.Commit(); err != nil {
		t.Fatal(err)
	}
	if res := proveQuery(t, a, alice); res.Code != 0 || res.Height != 2 {
		t.Fatalf("proof query after commit: code %d %q, height %d", res.Code, res.Log, res.Height)
	}
	for _, path := range []string{"supply", "account/nobody"} {
		res, _ := a.Query(context.Background(), &abci.QueryRequest{Path: path, Prove: true})
		if res.Code == 0 {
			t.Errorf("proof of %q answered", path)
		}
	}
}

// TestProveAccountOverRPC proves an account through a running node's HTTP RPC, against the
// app hash of the next block's header.
func TestProveAccountOverRPC(t *testing.T) {
	home := t.TempDir()
	alice := testKey(1)
	initSingle(t, home, alice)
	n := startNode(t, home)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc, err := NewHTTPClient(n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := hc.ProveAccount(ctx, keys.AddressOfKey(alice))
	if err != nil {
		t.Fatal(err)
	}
	if p.Balance != 1_000*ledger.UomniPerOMNI || p.Height < 1 || len(p.AppHash) != 32 {
		t.Fatalf("proven %+v", p)
	}
	next := p.Height + 1
	commit, err := hc.rpc.Commit(ctx, &next)
	if err != nil || !bytes.Equal(commit.AppHash, p.AppHash) {
		t.Fatalf("app hash %X is not header %d's (%v)", p.AppHash, next, err)
	}
}

// FuzzVerifyAccount feeds the client's verifier answers with arbitrary values and proof
// data: it must never panic, and what verifies must be the account the chain holds.
func FuzzVerifyAccount(f *testing.F) {
	a, appHash := memoryChain(f)
	alice := keys.AddressOfKey(testKey(1))
	res := proveQuery(f, a, alice)
	f.Add(res.Value, res.ProofOps.Ops[0].Data)
	f.Add([]byte(nil), proveQuery(f, a, keys.AddressOfKey(testKey(2))).ProofOps.Ops[0].Data)
	f.Fuzz(func(t *testing.T, value, data []byte) {
		r := &abci.QueryResponse{Key: res.Key, Value: value, Height: res.Height,
			ProofOps: &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: res.Key, Data: data}}}}
		acc, err := verifyAccount(alice, r, appHash)
		if err == nil && acc.Balance != 1_000*ledger.UomniPerOMNI {
			t.Fatalf("verified a balance of %d", acc.Balance)
		}
	})
}
