package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

func runChainCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestChainInitWritesANetwork(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	out, errOut, code := runChainCLI(t, "chain", "init", "--validators", "2", "--home", dir, "--base-port", "0", "--chain-id", "omnisync-clitest", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var nw chain.Network
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&nw); err != nil {
		t.Fatalf("--output json: %v\n%s", err, out)
	}
	if nw.ChainID != "omnisync-clitest" || nw.Dir != dir || len(nw.Validators) != 2 {
		t.Fatalf("network = %+v", nw)
	}
	ports := map[string]bool{}
	for i, v := range nw.Validators {
		if v.Home != filepath.Join(dir, []string{"validator-1", "validator-2"}[i]) {
			t.Errorf("validator %d home %s", i+1, v.Home)
		}
		for _, f := range []string{"config/genesis.json", "config/priv_validator_key.json", "config/node_key.json", chain.HomeConfigFile, chain.AccountKeyFile} {
			if _, err := os.Stat(filepath.Join(v.Home, f)); err != nil {
				t.Errorf("%s: %v", v.Name, err)
			}
		}
		if k := readKeyFile(t, v.KeyFile); keys.AddressOfKey(k) != v.Account {
			t.Errorf("%s: %s does not hold the key of %s", v.Name, v.KeyFile, v.Account)
		}
		if v.Stake != ledger.DefaultParams().MinValidatorStake || v.NodeID == "" {
			t.Errorf("%s: stake %d, node id %q", v.Name, v.Stake, v.NodeID)
		}
		ports[v.RPCListen], ports[v.P2PListen] = true, true
	}
	if len(ports) != 4 {
		t.Errorf("ports %v are not four distinct ones", ports)
	}
	var total uint64
	for _, a := range nw.Accounts {
		if k := readKeyFile(t, a.KeyFile); keys.AddressOfKey(k) != a.Address {
			t.Errorf("%s: %s does not hold the key of %s", a.Name, a.KeyFile, a.Address)
		}
		total += a.Balance
	}
	// Team, investors, public sale and liquidity: 40% of the supply, less the two stakes.
	if want := ledger.GenesisSupply/100*40 - 2*ledger.DefaultParams().MinValidatorStake; total != want {
		t.Errorf("beneficiaries hold %d uomni, want %d", total, want)
	}

	// A second init must not overwrite the first.
	_, errOut, code = runChainCLI(t, "chain", "init", "--validators", "2", "--home", dir)
	if code != 1 || !strings.Contains(errOut, "already has a genesis") {
		t.Errorf("second init: exit %d, stderr %q", code, errOut)
	}
}

func TestChainInitText(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runChainCLI(t, "chain", "init", "--validators", "3", "--home", dir, "--base-port", "36657")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Initialised 3-validator network omnisync-localnet",
		"http://127.0.0.1:36657", "127.0.0.1:36666", "http://127.0.0.1:36677",
		"public-sale", "unlocked", "team", "vests ",
		"omnisync chain start --home " + filepath.Join(dir, "validator-3") + " --rest-addr 127.0.0.1:7090",
		"No routers: jobs need one listed in the genesis (--router ADDRESS)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestChainCommandErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runChainCLI(t, "chain", "init", "--validators", "1", "--home", dir, "--base-port", "0"); code != 0 {
		t.Fatal(errOut)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"chain", "init", "--validators", "0", "--home", t.TempDir()}, "at least 1 validator"},
		{[]string{"chain", "init", "--validators", "4", "--home", t.TempDir(), "--base-port", "65530"}, "choose a base port"},
		{[]string{"chain", "init", "--home", t.TempDir(), "--router", "not-an-address"}, "want a wallet address"},
		{[]string{"chain", "start"}, "--home is required"},
		{[]string{"chain", "start", "--home", dir + "/validator-1", "--rest-addr", "7070"}, `chain.rest_addr: "7070" is not host:port`},
		{[]string{"chain", "start", "--home", dir}, "holds a whole network; pass one validator's home, e.g. --home " + filepath.Join(dir, "validator-1")},
		{[]string{"chain", "start", "--home", t.TempDir()}, "omnisync chain init"},
	} {
		if _, errOut, code := runChainCLI(t, tt.args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestChainStartRunsUntilCancelled starts a one-validator network's validator through the
// CLI, waits for a committed height in its JSON status, and stops it as Ctrl-C would.
func TestChainStartRunsUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runChainCLI(t, "chain", "init", "--validators", "1", "--home", dir, "--base-port", "0", "--block-time", "100ms", "--empty-block-interval", "100ms"); code != 0 {
		t.Fatal(errOut)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lockedBuffer{}
	var errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"chain", "start", "--home", filepath.Join(dir, "validator-1"), "--status-interval", "100ms", "--rest-addr", "127.0.0.1:0", "--output", "json"}, out, &errOut)
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(out.String(), `"event":"status","height":`) || lastEvent(t, out.String()).Height < 2 {
		select {
		case code := <-done:
			t.Fatalf("chain start exited with %d early: %s\n%s", code, errOut.String(), out.String())
		case <-deadline:
			t.Fatalf("no height reported in 30 s:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after Ctrl-C: %s", code, errOut.String())
	}
	var events []chainEvent
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var e chainEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	first, last := events[0], events[len(events)-1]
	if first.Event != "started" || first.Validator != "validator-1" || first.ChainID != chain.DefaultNetworkChainID || !strings.HasPrefix(first.RPCURL, "http://127.0.0.1:") ||
		!strings.HasPrefix(first.RESTURL, "http://127.0.0.1:") || !strings.HasSuffix(first.RESTURL, "/v1") {
		t.Errorf("first event %+v", first)
	}
	if last.Event != "stopped" || last.Height < 2 {
		t.Errorf("last event %+v", last)
	}
}

func lastEvent(t *testing.T, out string) chainEvent {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var e chainEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatalf("line %q: %v", lines[len(lines)-1], err)
	}
	return e
}

// lockedBuffer is a bytes.Buffer that a running command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func readKeyFile(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	k, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestChainInitForContainers writes a network as deploy/ uses it: each validator in its own
// container, peering by service name, with accounts funded at genesis and one validator
// drawn to verify each job.
func TestChainInitForContainers(t *testing.T) {
	dir := t.TempDir()
	router, consumer := keys.AddressOfKey(testKey(1)), keys.AddressOfKey(testKey(2))
	out, errOut, code := runChainCLI(t, "chain", "init", "--validators", "4", "--home", filepath.Join(dir, "net"),
		"--hosts", "validator-1,validator-2", "--hosts", "validator-3,validator-4", "--router", string(router),
		"--fund", string(router)+"=10", "--fund", string(consumer)+"=10000.5", "--committee-size", "1", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	nw := decodeJSON[chain.Network](t, out)
	for i, v := range nw.Validators {
		host := fmt.Sprintf("validator-%d", i+1)
		o, err := chain.LoadOptions(v.Home)
		if err != nil {
			t.Fatal(err)
		}
		if v.Host != host || v.RPCURL() != "http://"+host+":26657" || o.RPCListen != "0.0.0.0:26657" || o.P2PListen != "0.0.0.0:26656" {
			t.Errorf("%s: host %q, RPC %s, listens on %s and %s", v.Name, v.Host, v.RPCURL(), o.RPCListen, o.P2PListen)
		}
		peers := strings.Split(o.Peers, ",")
		if len(peers) != 3 {
			t.Fatalf("%s peers %q", v.Name, o.Peers)
		}
		for _, p := range peers {
			if strings.Contains(p, "127.0.0.1") || strings.Contains(p, "@"+host+":") || !strings.HasSuffix(p, ":26656") {
				t.Errorf("%s has peer %q: want the others by host name", v.Name, p)
			}
		}
	}
	var genesis struct {
		AppState ledger.Genesis `json:"app_state"`
	}
	data, err := os.ReadFile(filepath.Join(nw.Validators[3].Home, "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &genesis); err != nil || genesis.AppState.Params.CommitteeSize != 1 {
		t.Errorf("genesis committee_size %d (%v), want 1", genesis.AppState.Params.CommitteeSize, err)
	}
	want := map[keys.Address]uint64{router: 10 * ledger.UomniPerOMNI, consumer: 10_000_500_000}
	if len(nw.Funded) != 2 {
		t.Fatalf("funded %+v", nw.Funded)
	}
	for _, a := range nw.Funded {
		if a.Balance != want[a.Address] {
			t.Errorf("%s funded with %d uomni, want %d", a.Address, a.Balance, want[a.Address])
		}
	}

	text, errOut, code := runChainCLI(t, "chain", "init", "--validators", "2", "--home", filepath.Join(dir, "text"),
		"--hosts", "a.example,b.example", "--fund", string(consumer)+"=5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"http://a.example:26657", "b.example:26656", "Funded at genesis", string(consumer) + "  5 OMNI",
		"b.example: omnisync chain start --home " + filepath.Join(dir, "text", "validator-2")} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--fund", string(consumer)}, "want ADDRESS=OMNI"},
		{[]string{"--fund", "nobody=5"}, "want ADDRESS=OMNI"},
		{[]string{"--fund", string(consumer) + "=0"}, "OMNI above zero"},
		{[]string{"--fund", string(consumer) + "=-1"}, "OMNI above zero"},
		{[]string{"--hosts", "a,b", "--validators", "3"}, "2 hosts for 3 validators"},
		{[]string{"--hosts", "a", "--validators", "1", "--base-port", "0"}, "fixed base port"},
	} {
		args := append([]string{"chain", "init", "--home", t.TempDir()}, tt.args...)
		if _, errOut, code := runChainCLI(t, args...); code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}
