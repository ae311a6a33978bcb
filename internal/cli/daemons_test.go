package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/devnet"
	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/tensor"
)

// daemon is one `omnisync … run` (or chain start) running in this process, as its own
// program would: its own context (Ctrl-C), its own stdout and stderr.
type daemon struct {
	name   string
	out    *lockedBuffer
	errOut *lockedBuffer
	stop   context.CancelFunc
	done   chan int
}

func startDaemon(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{name: name, out: &lockedBuffer{}, errOut: &lockedBuffer{}, stop: cancel, done: make(chan int, 1)}
	go func() { d.done <- Run(ctx, append(args, "--output", "json"), d.out, d.errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s of its interrupt", name)
		}
	})
	return d
}

// event waits for the first JSON line of the daemon's stdout whose "event" is want and
// decodes it into v.
func (d *daemon) event(t *testing.T, want string, v any, ok func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for _, line := range strings.Split(d.out.String(), "\n") {
			var e struct{ Event string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Event == want {
				if err := json.Unmarshal([]byte(line), v); err != nil {
					t.Fatalf("%s: %q: %v", d.name, line, err)
				}
				if ok == nil || ok() {
					return
				}
			}
		}
		select {
		case code := <-d.done:
			d.done <- code
			t.Fatalf("%s exited with %d before %q:\nstdout: %s\nstderr: %s", d.name, code, want, d.out.String(), d.errOut.String())
		case <-deadline:
			t.Fatalf("%s: no %q event in 30 s:\nstdout: %s\nstderr: %s", d.name, want, d.out.String(), d.errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// interrupt stops the daemon as Ctrl-C would and checks it exits 0 having said so.
func (d *daemon) interrupt(t *testing.T) {
	t.Helper()
	d.stop()
	select {
	case code := <-d.done:
		d.done <- code
		if code != 0 {
			t.Errorf("%s exited %d after Ctrl-C: %s", d.name, code, d.errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", d.name)
	}
	if !strings.Contains(d.out.String(), `"event":"stopped"`) {
		t.Errorf("%s: no stopped event:\n%s", d.name, d.out.String())
	}
}

// runOK runs a one-shot command and returns its stdout, failing the test on a non-zero exit.
func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("omnisync %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%v:\n%s", err, s)
	}
	return v
}

// TestDaemonsOnSeparateCommandsSettleAJob runs every role as its own daemon, each through
// the command line with its own context, as four machines would run them (only on
// loopback, with free ports): a one-validator chain serving REST, a router, a node and
// the verifier. A consumer submits a job through the router's REST API; it settles verified.
func TestDaemonsOnSeparateCommandsSettleAJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain, a router, a node and a validator")
	}
	start := time.Now()
	dir := t.TempDir()
	wallets := filepath.Join(dir, "wallets")
	addr := map[string]string{}
	for _, name := range []string{"router", "node", "consumer"} {
		addr[name] = decodeJSON[walletInfo](t, runOK(t, "wallet", "new", name, "--wallet-dir", wallets, "-o", "json")).Address
	}

	// The chain: genesis names the router; one validator, fast blocks, REST on a free port.
	net := filepath.Join(dir, "net")
	nw := decodeJSON[chain.Network](t, runOK(t, "chain", "init", "--validators", "1", "--home", net, "--base-port", "0",
		"--block-time", "150ms", "--empty-block-interval", "300ms", "--router", addr["router"], "-o", "json"))
	val := nw.Validators[0]
	chainD := startDaemon(t, "chain", "chain", "start", "--home", val.Home, "--rest-addr", "127.0.0.1:0", "--status-interval", "100ms")
	var ce chainEvent
	chainD.event(t, "started", &ce, nil)
	var st chainEvent
	chainD.event(t, "status", &st, func() bool { return st.Height >= 1 })
	rpc := ce.RPCURL

	// Fund the node and the consumer from the public-sale allocation, through the chain
	// node's REST API, by the URL it printed (with /v1).
	publicSale := filepath.Join(net, "keys", "public-sale.json")
	for _, to := range []struct{ who, amount string }{{"node", "1000"}, {"consumer", "100"}} {
		runOK(t, "wallet", "send", "--api", ce.RESTURL, "--wallet", publicSale, addr[to.who], to.amount)
	}
	// A chain node answers chain views and sends jobs to a router.
	chainAPI := api.NewClient(ce.RESTURL)
	if _, err := chainAPI.SubmitJob(t.Context(), api.SubmitJobRequest{}); err == nil {
		t.Error("the chain node's REST API accepted a job")
	}

	routerD := startDaemon(t, "router", "router", "run", "--wallet", "router", "--wallet-dir", wallets, "--chain-rpc", rpc,
		"--nodes-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0", "--tls-dir", filepath.Join(dir, "router", "tls"),
		"--store-dir", filepath.Join(dir, "router", "store"), "--heartbeat-ttl", "3s", "--rights-interval", "150ms")
	var re daemonEvent
	routerD.event(t, "started", &re, nil)
	if re.CAFile == "" || !strings.HasPrefix(re.NodesURL, "wss://127.0.0.1:") || !strings.HasSuffix(re.RESTURL, "/v1") {
		t.Fatalf("router started event %+v", re)
	}

	reg := decodeJSON[nodeRegistration](t, runOK(t, "node", "register", "--wallet", "node", "--wallet-dir", wallets,
		"--chain-rpc", rpc, "--gpu-tier", "declared", "--min-price", "1.8", "--stake", "500", "-o", "json"))
	if reg.NodeID != addr["node"] || reg.Status != "active" || reg.Tx == "" || reg.Hardware.GPUModel != "sim RTX 4090" || reg.HardwareDetected {
		t.Fatalf("node register: %+v", reg)
	}

	valD := startDaemon(t, "validator", "validator", "run", "--wallet", val.KeyFile, "--router", re.NodesURL,
		"--router-ca", re.CAFile, "--chain-rpc", rpc, "--heartbeat", "300ms", "--metrics-addr", "127.0.0.1:0")
	var ve daemonEvent
	valD.event(t, "started", &ve, nil)
	nodeD := startDaemon(t, "node", "node", "run", "--wallet", "node", "--wallet-dir", wallets, "--router", re.NodesURL,
		"--router-ca", re.CAFile, "--chain-rpc", rpc, "--gpu-tier", "declared", "--heartbeat", "300ms", "--metrics-addr", "127.0.0.1:0")
	var ne daemonEvent
	nodeD.event(t, "started", &ne, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c := api.NewClient(re.RESTURL)
	for {
		nodes, err := c.Nodes(ctx)
		if err == nil && len(nodes) == 1 && nodes[0].Online {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the node never showed online at the router: %v %v", nodes, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	consumer, err := keyfile.Load(filepath.Join(wallets, "consumer.json"))
	if err != nil {
		t.Fatal(err)
	}
	spec, data, err := devnet.DemoSpec(1)
	if err != nil {
		t.Fatal(err)
	}
	submitted := time.Now()
	job, err := devnet.SubmitSigned(ctx, c, consumer, nw.ChainID, spec, data)
	if err != nil {
		t.Fatal(err)
	}
	if job, err = c.WaitJob(ctx, job.ID, nil); err != nil {
		t.Fatal(err)
	}
	if job.Status != api.StatusSettled || !job.Verified || job.Node != addr["node"] {
		t.Fatalf("job ended %s (verified %t, node %s): %s %s\nevents %+v", job.Status, job.Verified, job.Node, job.Error, job.Verdict, job.Events)
	}
	settled := time.Since(submitted)
	wantDaemonMetrics(t, ce, re, ne, ve)
	// The chain node shows the same settlement from its own REST API.
	if cj, err := chainAPI.Job(ctx, job.ID); err != nil || cj.Status != api.StatusSettled || cj.Payment == nil {
		t.Errorf("the chain node's view of job %s: %+v, %v", job.ID, cj, err)
	}

	// The supplier's view: online, active, one job verified and none failed, paid.
	ns := decodeJSON[nodeStatus](t, runOK(t, "node", "status", "--wallet", "node", "--wallet-dir", wallets, "--api", re.RESTURL, "-o", "json"))
	if ns.Node.ID != addr["node"] || !ns.Node.Online || ns.Node.Status != "active" || ns.Node.JobsVerified != 1 ||
		ns.ReliabilityBP != 10_000 || ns.Balance == 0 || ns.Node.LastHeartbeat.IsZero() {
		t.Errorf("node status: %+v", ns)
	}
	if text := runOK(t, "node", "status", addr["node"], "--api", re.RESTURL); !strings.Contains(text, "ONLINE") || !strings.Contains(text, "100.00% (1 verified, 0 failed)") {
		t.Errorf("node status text:\n%s", text)
	}
	// Its earnings entry by entry, as the chain recorded them.
	hist := decodeJSON[api.NodeHistory](t, runOK(t, "node", "history", addr["node"], "--api", re.RESTURL, "-o", "json"))
	if hist.Record.Settled != 1 || hist.Record.Earned == 0 || len(hist.Entries) != 1 || hist.Entries[0].JobID != job.ID ||
		hist.Entries[0].Kind != ledger.HistorySettled || hist.Entries[0].Paid+hist.Entries[0].Reward != hist.Record.Earned {
		t.Errorf("node history: %+v", hist)
	}

	// The consumer's journey from the CLI: .npy in, a verified .npy out.
	a, _ := tensor.RandomInt8(8, 5, 11)
	b, _ := tensor.RandomInt8(5, 3, 12)
	aFile, bFile := filepath.Join(dir, "A.npy"), filepath.Join(dir, "B.npy")
	if err := os.WriteFile(aFile, a.NPY(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bFile, b.NPY(), 0o600); err != nil {
		t.Fatal(err)
	}
	consumerFlags := []string{"--wallet", "consumer", "--wallet-dir", wallets, "--api", re.RESTURL}
	done := decodeJSON[api.Job](t, runOK(t, append([]string{"job", "submit", "--input", "a=" + aFile, "--input", "b=" + bFile, "--wait", "-o", "json"}, consumerFlags...)...))
	if done.Status != api.StatusSettled || !done.Verified {
		t.Fatalf("job submit --wait: %+v", done)
	}
	res := decodeJSON[jobResult](t, runOK(t, append([]string{"job", "result", done.ID, "--out", dir, "-o", "json"}, consumerFlags...)...))
	raw, err := os.ReadFile(res.File)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := tensor.MatMulInt8(a, b)
	if !res.Verified || res.Rows != 8 || res.Cols != 3 || !bytes.Equal(raw, want.NPY()) {
		t.Fatalf("job result %+v: the file is not A·B as .npy", res)
	}
	if out := runOK(t, append([]string{"job", "status", done.ID}, consumerFlags...)...); !strings.Contains(out, "settled (verified)") {
		t.Errorf("job status:\n%s", out)
	}
	for _, how := range [][]string{nil, {"--chain"}} { // the router's signed list, and the chain's
		list := decodeJSON[api.JobList](t, runOK(t, append(append([]string{"job", "list", "--limit", "5", "-o", "json"}, how...), consumerFlags...)...)).Jobs
		if len(list) != 2 || list[0].ID != done.ID || list[1].ID != job.ID || list[0].Status != api.StatusSettled {
			t.Errorf("job list %v: %+v, want the CLI's job then the first, newest first", how, list)
		}
	}
	page := decodeJSON[api.JobList](t, runOK(t, append([]string{"job", "list", "--limit", "1", "-o", "json"}, consumerFlags...)...))
	if len(page.Jobs) != 1 || page.Next != done.ID {
		t.Errorf("first page of one: %+v", page)
	}
	if rest := decodeJSON[api.JobList](t, runOK(t, append([]string{"job", "list", "--after", page.Next, "-o", "json"}, consumerFlags...)...)); len(rest.Jobs) != 1 || rest.Jobs[0].ID != job.ID || rest.Next != "" {
		t.Errorf("the page after %s: %+v", page.Next, rest)
	}
	var out, errOut bytes.Buffer
	if code := Run(t.Context(), append([]string{"job", "cancel", done.ID}, consumerFlags...), &out, &errOut); code == 0 || !strings.Contains(errOut.String(), "can no longer be cancelled") {
		t.Errorf("cancelling a settled job: exit %d, %s", code, errOut.String())
	}

	for _, d := range []*daemon{nodeD, valD, routerD, chainD} {
		d.interrupt(t)
	}
	t.Logf("whole network up, job settled verified %.1fs after submit, all stopped: %.1fs", settled.Seconds(), time.Since(start).Seconds())
}

// The errors a newcomer meets first say what to do.
func TestDaemonCommandErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	wallets := filepath.Join(dir, "wallets")
	runOK(t, "wallet", "new", "router", "--wallet-dir", wallets)
	bad := filepath.Join(dir, "bad.toml")
	if err := writeFile(bad, "[router]\nrest_adr = \"127.0.0.1:7070\"\n"); err != nil {
		t.Fatal(err)
	}
	// A reverse proxy whose chain node is down answers with a page of its own.
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "<html><body><h1>502 Bad Gateway</h1></body></html>", http.StatusBadGateway)
	}))
	defer proxy.Close()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "run", "--wallet-dir", wallets}, "node.router is not set: pass --router"},
		{[]string{"validator", "run"}, "validator.router is not set"},
		{[]string{"router", "run", "--config", bad}, "line 2: unknown key router.rest_adr"},
		{[]string{"router", "run", "--max-attempts", "x"}, `--max-attempts "x": want a whole number`},
		{[]string{"router", "run", "--nodes-addr", "7422"}, `router.nodes_addr: "7422" is not host:port`},
		{[]string{"router", "run", "--wallet-dir", wallets, "--chain-rpc", "http://127.0.0.1:1"}, "cannot reach the chain RPC at http://127.0.0.1:1"},
		{[]string{"router", "run", "-w", "router", "--wallet-dir", wallets, "--rpc", "127.0.0.1:2"}, "cannot reach the chain RPC at 127.0.0.1:2"},
		{[]string{"router", "run", "-w", "router", "--wallet-dir", wallets, "--rpc", proxy.URL}, "cannot reach the chain RPC at " + proxy.URL},
		{[]string{"node", "register", "--wallet", "nobody", "--wallet-dir", wallets}, "omnisync wallet new nobody"},
		{[]string{"config", "print", "--role", "routers"}, "want one of chain, router, node, validator"},
		{[]string{"config", "print", "--config", bad}, "line 2: unknown key router.rest_adr"},
	} {
		var out, errOut bytes.Buffer
		if code := Run(t.Context(), tt.args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

func TestConfigPrintShowsWhereEachValueCameFrom(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "omnisync.toml")
	if err := writeFile(file, "[router]\nrest_addr = \"0.0.0.0:7070\"\n\n[node]\nmin_price = 0.04\n"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OMNISYNC_ROUTER_MAX_ATTEMPTS", "5")
	out := runOK(t, "config", "print", "--config", file, "--role", "router")
	for _, want := range []string{
		"[router]", "rest_addr = '0.0.0.0:7070'", "# file", "max_attempts = 5", "# env OMNISYNC_ROUTER_MAX_ATTEMPTS",
		"heartbeat_ttl = '10s'", "# default",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("config print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "[node]") {
		t.Errorf("--role router printed other roles:\n%s", out)
	}
	// What it prints is itself a config file giving the same settings.
	again := filepath.Join(dir, "again.toml")
	if err := writeFile(again, out); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OMNISYNC_ROUTER_MAX_ATTEMPTS", "")
	if out2 := runOK(t, "config", "print", "--config", again, "--role", "router"); strings.Contains(out2, "# default") || !strings.Contains(out2, "max_attempts = 5") {
		t.Errorf("printing the printed file: want every value from the file:\n%s", out2)
	}
	r := decodeJSON[configReport](t, runOK(t, "config", "print", "--config", file, "-o", "json"))
	found := false
	for _, s := range r.Settings {
		if s.Key == "node.min_price" {
			found = s.Value == "0.04" && s.Source == "file" && s.Env == "OMNISYNC_NODE_MIN_PRICE" && s.Flag == "--min-price"
		}
		if strings.Contains(strings.ToLower(s.Key), "key") && !strings.HasSuffix(s.Key, "_addr") {
			t.Errorf("config print shows %s: no setting may hold a key", s.Key)
		}
	}
	if !found || r.ConfigFile != file {
		t.Errorf("json: file %q, node.min_price not as set: %+v", r.ConfigFile, r.Settings)
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// A busy nodes port fails at once with the hint the other busy ports get, not after the
// NATS server's 30 s start-up timeout (issue #9).
func TestDevnetBusyNodesPortFailsFastWithAHint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	start := time.Now()
	var out, errOut bytes.Buffer
	code := Run(t.Context(), []string{"devnet", "--home", t.TempDir(), "--nodes-port", port,
		"--rest-addr", "127.0.0.1:0", "--rpc-addr", "127.0.0.1:0", "--p2p-addr", "127.0.0.1:0"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "router nodes port") || !strings.Contains(errOut.String(), "--nodes-port") {
		t.Errorf("exit %d, stderr %q; want the nodes port named with the hint", code, errOut.String())
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("took %s to fail", took)
	}
}
