package chain

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// TestNetworkSurvivesAStoppedValidator runs a four-validator network in this process:
// transfers commit, the chain goes on with one validator stopped (3 of 4 equal powers is
// more than 2/3), the stopped one restarts from its home, catches up, and all four agree
// on every balance.
func TestNetworkSurvivesAStoppedValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four CometBFT validators")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nw, err := InitNetwork(NetworkOptions{
		Dir: t.TempDir(), Validators: 4, ChainID: "omnisync-nettest",
		// Each turn of the stopped validator to propose costs ProposeTimeout.
		BlockTime: 100 * time.Millisecond, EmptyBlockInterval: 100 * time.Millisecond, ProposeTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}

	nodes := make([]*Node, len(nw.Validators))
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, v := range nw.Validators {
		wg.Add(1)
		go func() { // the first block needs 3 of the 4 running: start them together
			defer wg.Done()
			nodes[i], errs[i] = startFromHome(ctx, v.Home)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes {
			if n != nil {
				_ = n.Close()
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("4 validators at height 1 after %v", time.Since(began).Round(time.Millisecond))

	treasury := readKey(t, nw, "public-sale")
	alice, bob := testKey(1), testKey(2)
	sender := NewSigner(nodes[0].Client(), treasury, nw.ChainID)
	send := func(to ed25519.PrivateKey, omni uint64) int64 {
		t.Helper()
		c, err := sender.Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(to), Amount: omni * ledger.UomniPerOMNI}})
		if err != nil {
			t.Fatal(err)
		}
		return c.Height
	}
	send(alice, 100)
	send(bob, 50)
	sent := send(alice, 10)
	t.Logf("all four up: %.1f blocks/s", blockRate(ctx, t, nodes[0], 8))

	// Stop validator-4; the other three must keep committing and accept transfers, now
	// submitted through validator-2 and validator-3 to show any node takes them.
	if err := nodes[3].Close(); err != nil {
		t.Fatal(err)
	}
	// A signer reads its sequence from its node, so let that node apply the last tx first.
	for _, n := range nodes[1:3] {
		waitApplied(ctx, t, n, sent)
	}
	sender = NewSigner(nodes[1].Client(), treasury, nw.ChainID)
	send(bob, 20)
	send(alice, 5)
	if _, err := NewSigner(nodes[2].Client(), alice, nw.ChainID).Submit(ctx, ledger.Msg{Transfer: &ledger.MsgTransfer{To: keys.AddressOfKey(bob), Amount: 30 * ledger.UomniPerOMNI}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("validator-4 stopped: %.1f blocks/s", blockRate(ctx, t, nodes[1], 8))
	h := height(ctx, t, nodes[1])
	for _, n := range nodes[:3] {
		waitApplied(ctx, t, n, h)
	}

	// Restart validator-4 from its home in this same process and let it catch up.
	restarted := time.Now()
	if nodes[3], err = startFromHome(ctx, nw.Validators[3].Home); err != nil {
		t.Fatal(err)
	}
	last := send(alice, 1)
	target := max(last, height(ctx, t, nodes[0]))
	for _, n := range nodes {
		waitApplied(ctx, t, n, target)
	}
	t.Logf("validator-4 restarted and caught up to height %d in %v", target, time.Since(restarted).Round(time.Millisecond))

	// Every node reports the same balances, and they are what the transfers imply (2% of
	// each transfer burns).
	want := map[string]uint64{
		"alice": burnt(100) + burnt(10) + burnt(5) + burnt(1) - 30*ledger.UomniPerOMNI,
		"bob":   burnt(50) + burnt(20) + burnt(30),
	}
	accounts := map[string]keys.Address{"alice": keys.AddressOfKey(alice), "bob": keys.AddressOfKey(bob), "public-sale": keys.AddressOfKey(treasury)}
	seen := map[string]uint64{}
	for i, n := range nodes {
		for name, addr := range accounts {
			acc, err := n.Client().Account(ctx, addr)
			if err != nil {
				t.Fatalf("%s: %v", nw.Validators[i].Name, err)
			}
			if w, ok := want[name]; ok && acc.Balance != w {
				t.Errorf("%s says %s has %d uomni, want %d", nw.Validators[i].Name, name, acc.Balance, w)
			}
			if i == 0 {
				seen[name] = acc.Balance
			} else if acc.Balance != seen[name] {
				t.Errorf("%s says %s has %d uomni, %s says %d", nw.Validators[i].Name, name, acc.Balance, nw.Validators[0].Name, seen[name])
			}
		}
	}
	t.Logf("whole test %v", time.Since(began).Round(time.Millisecond))
}

func TestInitNetworkWritesHomesAndRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	nw, err := InitNetwork(NetworkOptions{Dir: dir, Validators: 3, BasePort: 36657})
	if err != nil {
		t.Fatal(err)
	}
	if nw.ChainID != DefaultNetworkChainID || len(nw.Validators) != 3 || len(nw.Accounts) != 4 {
		t.Fatalf("network = %+v", nw)
	}
	for i, v := range nw.Validators {
		o, err := LoadOptions(v.Home)
		if err != nil {
			t.Fatal(err)
		}
		wantRPC, wantP2P := []string{"127.0.0.1:36657", "127.0.0.1:36667", "127.0.0.1:36677"}[i], []string{"127.0.0.1:36656", "127.0.0.1:36666", "127.0.0.1:36676"}[i]
		if o.RPCListen != wantRPC || o.P2PListen != wantP2P || v.RPCListen != wantRPC || v.P2PListen != wantP2P {
			t.Errorf("%s listens on rpc %s p2p %s, want %s and %s", v.Name, o.RPCListen, o.P2PListen, wantRPC, wantP2P)
		}
		peers := strings.Split(o.Peers, ",")
		if len(peers) != 2 {
			t.Fatalf("%s peers = %q, want the two others", v.Name, o.Peers)
		}
		for _, p := range peers {
			if strings.Contains(p, v.NodeID) || !strings.Contains(p, "@127.0.0.1:") {
				t.Errorf("%s has peer %q", v.Name, p)
			}
		}
		if !HasGenesis(v.Home) {
			t.Errorf("%s has no genesis", v.Name)
		}
		if k := readKeyFile(t, v.KeyFile); keys.AddressOfKey(k) != v.Account {
			t.Errorf("%s key file does not match its account", v.Name)
		}
		if v.Stake != ledger.DefaultParams().MinValidatorStake {
			t.Errorf("%s stakes %d", v.Name, v.Stake)
		}
	}
	// Every home holds the same genesis.
	first, err := os.ReadFile(filepath.Join(nw.Validators[0].Home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range nw.Validators[1:] {
		g, err := os.ReadFile(filepath.Join(v.Home, "config", "genesis.json"))
		if err != nil || string(g) != string(first) {
			t.Errorf("%s genesis differs from validator-1's (%v)", v.Name, err)
		}
	}

	_, err = InitNetwork(NetworkOptions{Dir: dir, Validators: 3})
	if !errors.Is(err, ErrNetworkExists) {
		t.Fatalf("second init: error = %v, want ErrNetworkExists", err)
	}
}

func TestInitNetworkRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]NetworkOptions{
		"no validators":      {Dir: t.TempDir()},
		"no dir":             {Validators: 1},
		"ports out of range": {Dir: t.TempDir(), Validators: 4, BasePort: 65530},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := InitNetwork(o); err == nil {
				t.Fatal("InitNetwork succeeded")
			}
		})
	}
}

func TestLoadOptionsExplainsAMissingConfig(t *testing.T) {
	_, err := LoadOptions(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "omnisync chain init") {
		t.Fatalf("error = %v, want a hint to run chain init", err)
	}
}

// startFromHome starts the validator of a home as `omnisync chain start` does. With
// OMNISYNC_TEST_LOG set, every node logs to stderr at debug level.
func startFromHome(ctx context.Context, home string) (*Node, error) {
	o, err := LoadOptions(home)
	if err != nil {
		return nil, err
	}
	if os.Getenv("OMNISYNC_TEST_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("home", filepath.Base(home))
	}
	n, err := New(o)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// waitApplied waits until n's ledger state includes block h. The RPC reports a height
// once the block is stored, a moment before the app has applied it; block h+1 is stored
// only after h is applied.
func waitApplied(ctx context.Context, t *testing.T, n *Node, h int64) {
	t.Helper()
	if err := n.Client().WaitForHeight(ctx, h+1); err != nil {
		t.Fatalf("%s did not reach height %d: %v", filepath.Base(n.opts.Home), h+1, err)
	}
}

// blockRate waits for n to commit blocks more blocks and returns the rate it saw.
func blockRate(ctx context.Context, t *testing.T, n *Node, blocks int64) float64 {
	t.Helper()
	start, from := time.Now(), height(ctx, t, n)
	if err := n.Client().WaitForHeight(ctx, from+blocks); err != nil {
		t.Fatalf("%s stopped committing: %v", filepath.Base(n.opts.Home), err)
	}
	return float64(blocks) / time.Since(start).Seconds()
}

func height(ctx context.Context, t *testing.T, n *Node) int64 {
	t.Helper()
	h, err := n.Client().Height(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func readKey(t *testing.T, nw Network, name string) ed25519.PrivateKey {
	t.Helper()
	for _, a := range nw.Accounts {
		if a.Name == name {
			return readKeyFile(t, a.KeyFile)
		}
	}
	t.Fatalf("no %s account in the network", name)
	return nil
}

func readKeyFile(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	k, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// burnt is what arrives of a transfer of omni OMNI after the 2% burn.
func burnt(omni uint64) uint64 { return omni * ledger.UomniPerOMNI * 98 / 100 }

// An init that failed before writing the genesis can be run again and keeps the keys.
func TestInitNetworkKeepsKeysOfAnUnfinishedRun(t *testing.T) {
	dir := t.TempDir()
	first, err := InitNetwork(NetworkOptions{Dir: dir, Validators: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range first.Validators {
		if err := os.Remove(filepath.Join(v.Home, "config", "genesis.json")); err != nil {
			t.Fatal(err)
		}
	}
	again, err := InitNetwork(NetworkOptions{Dir: dir, Validators: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range again.Validators {
		if v.Account != first.Validators[i].Account || v.NodeID != first.Validators[i].NodeID {
			t.Errorf("%s changed identity: %+v, was %+v", v.Name, v, first.Validators[i])
		}
	}
	for i, a := range again.Accounts {
		if a.Address != first.Accounts[i].Address {
			t.Errorf("%s key changed", a.Name)
		}
	}
}

func TestLoadOptionsRejectsABrokenConfig(t *testing.T) {
	for name, tt := range map[string]struct{ config, want string }{
		"misspelt field": {`{"rpc_listen":"127.0.0.1:1","p2p_listen":"127.0.0.1:2","persistent_peer":[]}`, "unknown field"},
		"bad duration":   {`{"rpc_listen":"127.0.0.1:1","p2p_listen":"127.0.0.1:2","block_time":"fast"}`, `"fast" is not a duration`},
		"bad address":    {`{"rpc_listen":"26657","p2p_listen":"127.0.0.1:2"}`, "rpc_listen \"26657\" is not host:port"},
	} {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			if err := os.WriteFile(filepath.Join(home, HomeConfigFile), []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOptions(home); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
	home := t.TempDir()
	config := `{"rpc_listen":"127.0.0.1:1","p2p_listen":"127.0.0.1:2","persistent_peers":["a@127.0.0.1:3","b@127.0.0.1:4"],"block_time":"200ms","propose_timeout":"1s"}`
	if err := os.WriteFile(filepath.Join(home, HomeConfigFile), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := LoadOptions(home)
	want := Options{Home: home, RPCListen: "127.0.0.1:1", P2PListen: "127.0.0.1:2", Peers: "a@127.0.0.1:3,b@127.0.0.1:4", BlockTime: 200 * time.Millisecond, ProposeTimeout: time.Second}
	if err != nil || o != want {
		t.Fatalf("LoadOptions = %+v, %v; want %+v", o, err, want)
	}
}

// Validators each on their own host (containers, servers) listen on every interface at the
// same ports and dial each other by host name; funded accounts get their balance and the
// committee size its value at genesis.
func TestInitNetworkOnOwnHosts(t *testing.T) {
	consumer := keys.AddressOfKey(testKey(7))
	nw, err := InitNetwork(NetworkOptions{
		Dir: t.TempDir(), Validators: 3, BasePort: 26657, Hosts: []string{"validator-1", "validator-2", "10.0.0.3"},
		Funds:         []ledger.GenesisAccount{{Address: consumer, Balance: 1000 * ledger.UomniPerOMNI}},
		CommitteeSize: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range nw.Validators {
		o, err := LoadOptions(v.Home)
		if err != nil {
			t.Fatal(err)
		}
		if o.RPCListen != "0.0.0.0:26657" || o.P2PListen != "0.0.0.0:26656" {
			t.Errorf("%s listens on rpc %s p2p %s, want every interface at 26657 and 26656", v.Name, o.RPCListen, o.P2PListen)
		}
		wantURL := []string{"http://validator-1:26657", "http://validator-2:26657", "http://10.0.0.3:26657"}[i]
		if v.RPCURL() != wantURL {
			t.Errorf("%s RPC URL %s, want %s", v.Name, v.RPCURL(), wantURL)
		}
		var want []string
		for j, p := range nw.Validators {
			if j != i {
				want = append(want, p.NodeID+"@"+[]string{"validator-1", "validator-2", "10.0.0.3"}[j]+":26656")
			}
		}
		if o.Peers != strings.Join(want, ",") {
			t.Errorf("%s peers %q, want %q", v.Name, o.Peers, strings.Join(want, ","))
		}
	}
	if len(nw.Funded) != 1 || nw.Funded[0].Address != consumer || nw.Funded[0].Balance != 1000*ledger.UomniPerOMNI {
		t.Fatalf("funded = %+v", nw.Funded)
	}
	var genesis struct {
		AppState ledger.Genesis `json:"app_state"`
	}
	data, err := os.ReadFile(filepath.Join(nw.Validators[0].Home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &genesis); err != nil {
		t.Fatal(err)
	}
	var funded, publicSale uint64
	for _, a := range genesis.AppState.Accounts {
		switch a.Address {
		case consumer:
			funded = a.Balance
		case readAccount(t, nw, "public-sale"):
			publicSale = a.Balance
		}
	}
	// The public sale (8%) pays the three validator stakes and the funded account.
	wantSale := ledger.GenesisSupply/100*8 - 3*ledger.DefaultParams().MinValidatorStake - 1000*ledger.UomniPerOMNI
	if funded != 1000*ledger.UomniPerOMNI || publicSale != wantSale {
		t.Errorf("genesis gives the funded account %d and the public sale %d uomni, want %d and %d", funded, publicSale, 1000*ledger.UomniPerOMNI, wantSale)
	}
	if c := genesis.AppState.Params.CommitteeSize; c != 1 {
		t.Errorf("genesis committee_size %d, want 1", c)
	}
}

func TestInitNetworkRejectsBadHostsAndFunds(t *testing.T) {
	addr := keys.AddressOfKey(testKey(8))
	for name, tt := range map[string]struct {
		o    NetworkOptions
		want string
	}{
		"too few hosts":   {NetworkOptions{Validators: 2, BasePort: 26657, Hosts: []string{"a"}}, "1 hosts for 2 validators"},
		"same host twice": {NetworkOptions{Validators: 2, BasePort: 26657, Hosts: []string{"a", "a"}}, `host "a" is named twice`},
		"host with port":  {NetworkOptions{Validators: 1, BasePort: 26657, Hosts: []string{"a:26656"}}, "without a port"},
		"free ports":      {NetworkOptions{Validators: 1, Hosts: []string{"a"}}, "need a fixed base port"},
		"zero funds":      {NetworkOptions{Validators: 1, Funds: []ledger.GenesisAccount{{Address: addr}}}, "above zero"},
		"funds too large": {NetworkOptions{Validators: 1, Funds: []ledger.GenesisAccount{{Address: addr, Balance: ledger.GenesisSupply / 10}}}, "exceed the public-sale"},
	} {
		t.Run(name, func(t *testing.T) {
			tt.o.Dir = t.TempDir()
			if _, err := InitNetwork(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

func readAccount(t *testing.T, nw Network, name string) keys.Address {
	t.Helper()
	return keys.AddressOfKey(readKey(t, nw, name))
}
