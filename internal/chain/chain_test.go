package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func initSingle(t testing.TB, home string, funded ed25519.PrivateKey) {
	t.Helper()
	vk, err := InitHome(home)
	if err != nil {
		t.Fatal(err)
	}
	g := ledger.Genesis{
		Supply:     11_000 * ledger.UomniPerOMNI,
		Params:     ledger.DefaultParams(),
		Accounts:   []ledger.GenesisAccount{{Address: keys.AddressOfKey(funded), Balance: 1_000 * ledger.UomniPerOMNI}},
		Validators: []ledger.Validator{{Address: keys.AddressOfKey(testKey(9)), PubKey: vk.PubKey, Stake: 10_000 * ledger.UomniPerOMNI}},
	}
	if err := WriteGenesis([]string{home}, "omnisync-chaintest", time.Now(), []ValidatorKey{vk}, g); err != nil {
		t.Fatal(err)
	}
}

func startNode(t *testing.T, home string) *Node {
	t.Helper()
	n, err := New(Options{Home: home, BlockTime: 100 * time.Millisecond, EmptyBlockInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestChainCommitsAndResumesAfterRestart(t *testing.T) {
	home := t.TempDir()
	alice, bob := testKey(1), testKey(2)
	initSingle(t, home, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	n := startNode(t, home)
	s := NewSigner(n.Client(), alice, "omnisync-chaintest")
	if _, err := s.Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(bob), Amount: 100 * ledger.UomniPerOMNI}}); err != nil {
		t.Fatal(err)
	}
	// A rejected tx surfaces the ledger's sentinel through the RPC.
	_, err := NewSigner(n.Client(), bob, "omnisync-chaintest").Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(alice), Amount: 1_000 * ledger.UomniPerOMNI}})
	if !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("overdraft error = %v, want ErrInsufficientFunds", err)
	}
	// The same over HTTP, where CometBFT flattens the rejection to text.
	hc, err := NewHTTPClient(n.RPCURL())
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewSigner(hc, bob, "omnisync-chaintest").Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(alice), Amount: 1_000 * ledger.UomniPerOMNI}})
	if !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("overdraft over HTTP: error = %v, want ErrInsufficientFunds", err)
	}
	height, err := n.Client().Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n2 := startNode(t, home) // same process: the tx_index DB must have been released
	defer n2.Close()
	if err := n2.Client().WaitForHeight(ctx, height+1); err != nil {
		t.Fatal(err)
	}
	acc, err := n2.Client().Account(ctx, keys.AddressOfKey(bob))
	if err != nil {
		t.Fatal(err)
	}
	if acc.Balance != 98*ledger.UomniPerOMNI {
		t.Fatalf("bob has %d after restart, want 98 OMNI", acc.Balance)
	}
	if id, err := n2.Client().ChainID(ctx); err != nil || id != "omnisync-chaintest" {
		t.Fatalf("chain id %q %v", id, err)
	}
}
