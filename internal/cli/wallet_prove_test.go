package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/chain"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// startProveChain runs a one-validator network made by chain init and returns its RPC URL
// and a funded genesis account without vesting.
func startProveChain(t *testing.T) (rpcURL string, acct chain.NetworkAccount) {
	t.Helper()
	nw, err := chain.InitNetwork(chain.NetworkOptions{Dir: t.TempDir(), Validators: 1,
		BlockTime: 100 * time.Millisecond, EmptyBlockInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := chain.LoadOptions(filepath.Join(nw.Dir, "validator-1"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := chain.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	for _, a := range nw.Accounts {
		if a.Vesting == nil && a.Balance > 0 {
			return n.RPCURL(), a
		}
	}
	t.Fatal("no unlocked genesis account")
	return "", chain.NetworkAccount{}
}

// TestWalletBalanceProve reads a balance with --prove from a real chain, in text and JSON.
func TestWalletBalanceProve(t *testing.T) {
	e := newCLIEnv(t)
	rpc, acct := startProveChain(t)
	addr := string(acct.Address)

	out := e.ok("wallet", "balance", addr, "--prove", "--rpc", rpc)
	for _, want := range []string{"✓ proven against the app hash in block ", "address    " + addr,
		"balance    " + omni(acct.Balance), "sequence   0", "app hash   "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	var p provenAccount
	// The scheme is optional, and OMNISYNC_RPC stands in for --rpc.
	t.Setenv(envRPCURL, strings.TrimPrefix(rpc, "http://"))
	if err := json.Unmarshal([]byte(e.ok("wallet", "balance", addr, "--prove", "-o", "json")), &p); err != nil {
		t.Fatal(err)
	}
	if !p.Proven || p.Balance != acct.Balance || string(p.Address) != addr || p.Height < 1 ||
		p.HeaderHeight != p.Height+1 || len(p.AppHash) != 64 {
		t.Errorf("JSON %+v", p)
	}

	if _, errOut, code := e.run("wallet", "balance", addr, "--prove", "--rpc", "http://127.0.0.1:1"); code != 1 ||
		!strings.Contains(errOut, "cannot reach the chain RPC at http://127.0.0.1:1") {
		t.Errorf("unreachable RPC: exit %d, %s", code, errOut)
	}
}

// TestWalletBalanceProveRejectsALyingNode puts a node that lies in front of the chain: it
// rewrites the balance in every proof answer, in the answer's value and in the proof's
// leaf alike. The proof then no longer hashes to the header's app hash, and the command
// fails instead of printing the forged balance.
func TestWalletBalanceProveRejectsALyingNode(t *testing.T) {
	e := newCLIEnv(t)
	rpc, acct := startProveChain(t)
	forged, _ := json.Marshal(ledger.Account{Balance: acct.Balance * 1000})
	liar := httptest.NewServer(forgeProofs(t, rpc, forged))
	t.Cleanup(liar.Close)

	out, errOut, code := e.run("wallet", "balance", string(acct.Address), "--prove", "--rpc", liar.URL)
	if code != 1 || !strings.Contains(errOut, "proof rejected: ") || !strings.Contains(errOut, "bad proof") ||
		strings.Contains(out, omni(acct.Balance*1000)) {
		t.Errorf("lying node: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
}

// forgeProofs proxies a CometBFT RPC and replaces the value of every abci_query answer,
// and that key's value in its proof, with forged.
func forgeProofs(t *testing.T, target string, forged []byte) http.Handler {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, u.String()+r.URL.Path, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		if bytes.Contains(body, []byte(`"abci_query"`)) {
			out = forgeAnswer(t, out, forged)
		}
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(out)
	})
}

func forgeAnswer(t *testing.T, raw, forged []byte) []byte {
	var msg struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  struct {
			Response map[string]any `json:"response"`
		} `json:"result"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Result.Response == nil {
		return raw
	}
	resp := msg.Result.Response
	resp["value"] = base64.StdEncoding.EncodeToString(forged)
	if ops, ok := resp["proof_ops"].(map[string]any); ok {
		for _, o := range ops["ops"].([]any) {
			op := o.(map[string]any)
			key, _ := base64.StdEncoding.DecodeString(op["key"].(string))
			data, _ := base64.StdEncoding.DecodeString(op["data"].(string))
			p, err := store.DecodeProof(data)
			if err != nil {
				t.Errorf("honest proof does not decode: %v", err)
				return raw
			}
			for i := range p.Leaves {
				if bytes.Equal(p.Leaves[i].Key, key) {
					p.Leaves[i].Value = forged
				}
			}
			op["data"] = base64.StdEncoding.EncodeToString(p.Encode())
		}
	}
	out, err := json.Marshal(msg)
	if err != nil {
		t.Error(err)
		return raw
	}
	return out
}
