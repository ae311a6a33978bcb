package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/api"
	"github.com/omnisync/omnisync/internal/ledger"
)

func TestChainReadRoutes(t *testing.T) {
	svc := newFake()
	svc.proposals = []api.Proposal{{ID: 3, Title: "burn more", Status: "voting",
		Params: map[string]json.RawMessage{"burn_bp": json.RawMessage("300")}}}
	svc.nodes = []api.Node{{ID: "node-1"}}
	c := newTestClient(t, newTestHandler(t, svc))
	ctx := t.Context()

	if a, err := c.ChainAccount(ctx, "omni1rich"); err != nil || a.Spendable != 40_000_000 || a.Vesting == nil || a.Vesting.EndUnix != 200 {
		t.Errorf("ChainAccount = %+v, %v", a, err)
	}
	var fe *api.FieldError
	if _, err := c.ChainAccount(ctx, "bogus"); !errors.As(err, &fe) || fe.Field != "address" {
		t.Errorf("bad address: %v", err)
	}
	if p, err := c.Params(ctx); err != nil || p.BurnBP != 200 || p.RouterWeights.Compute != 10_000 {
		t.Errorf("Params = %+v, %v", p, err)
	}
	if p, err := c.Proposal(ctx, 3); err != nil || string(p.Params["burn_bp"]) != "300" {
		t.Errorf("Proposal = %+v, %v", p, err)
	}
	if _, err := c.Proposal(ctx, 4); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("unknown proposal: %v", err)
	}
	if ps, err := c.Proposals(ctx); err != nil || len(ps) != 1 {
		t.Errorf("Proposals = %+v, %v", ps, err)
	}
}

// Lists are [] rather than null, and params.routers too.
func TestChainEmptyLists(t *testing.T) {
	h := newTestHandler(t, newFake())
	for path, want := range map[string]string{
		"/v1/chain/validators":                     "[]",
		"/v1/chain/proposals":                      "[]",
		"/v1/chain/unbonding/omni1rich":            "[]",
		"/v1/chain/nodes":                          "[]",
		"/v1/chain/params":                         `"routers":[]`,
		"/v1/chain/proposals/18446744073709551615": `"code":"not_found"`,
	} {
		rec := serve(h, http.MethodGet, path, nil)
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET %s: %d %s, want %s", path, rec.Code, rec.Body, want)
		}
	}
}

func TestChainProposalID(t *testing.T) {
	h := newTestHandler(t, newFake())
	for _, id := range []string{"x", "-1", "1.5", "18446744073709551616"} {
		rec := serve(h, http.MethodGet, "/v1/chain/proposals/"+id, nil)
		var body api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 400 || body.Field != "id" {
			t.Errorf("id %q: %d %+v", id, rec.Code, body)
		}
	}
}

func TestBroadcastTx(t *testing.T) {
	svc := newFake()
	c := newTestClient(t, newTestHandler(t, svc))
	res, err := c.BroadcastTx(t.Context(), []byte("signed"))
	if err != nil || res.Hash != "TX1" || res.Height != 9 || string(svc.txs[0]) != "signed" {
		t.Fatalf("BroadcastTx = %+v, %v; service saw %q", res, err, svc.txs)
	}

	h := newTestHandler(t, svc)
	for _, tt := range []struct {
		name, body string
		status     int
		field, msg string
	}{
		{"no tx", `{}`, 400, "tx", "required"},
		{"empty tx", `{"tx":""}`, 400, "tx", "required"},
		{"not base64", `{"tx":"!!"}`, 400, "", "base64"},
		{"unknown field", `{"tx":"AQ==","fee":1}`, 400, "fee", "unknown field"},
		{"tx too large", fmt.Sprintf(`{"tx":%q}`, base64.StdEncoding.EncodeToString(make([]byte, ledger.MaxTxBytes+1))), 400, "tx", "exceeds"},
		{"body too large", fmt.Sprintf(`{"tx":%q}`, base64.StdEncoding.EncodeToString(make([]byte, maxTxBody))), 413, "", "exceeds"},
	} {
		rec := serve(h, http.MethodPost, "/v1/chain/txs", []byte(tt.body))
		var body api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tt.status || body.Field != tt.field || !strings.Contains(body.Error, tt.msg) {
			t.Errorf("%s: %d %+v, want %d field %q containing %q", tt.name, rec.Code, body, tt.status, tt.field, tt.msg)
		}
	}
}

// A rejected transaction answers with the status its ledger code stands for and the
// ledger's own message, which the client turns back into the api sentinels.
func TestBroadcastTxRejections(t *testing.T) {
	rejected := func(code ledger.Code, log string) error {
		return fmt.Errorf("rejected by mempool: %w", ledger.ErrorFor(code, log))
	}
	tests := []struct {
		err      error
		status   int
		code     string
		sentinel error
		field    string
	}{
		{rejected(ledger.CodeInsufficientFunds, "insufficient funds: A has 1 OMNI, needs 2 OMNI"), 402, api.CodeInsufficientFunds, api.ErrInsufficientFunds, ""},
		{rejected(ledger.CodeWrongSequence, "wrong sequence: got 3, want 4"), 409, api.CodeConflict, api.ErrConflict, ""},
		{rejected(ledger.CodeDuplicate, "duplicate: already voted"), 409, api.CodeConflict, api.ErrConflict, ""},
		{rejected(ledger.CodeTooManyPending, "too many pending transactions: 64 from A"), 429, api.CodeTooManyRequests, api.ErrTooManyRequests, ""},
		{rejected(ledger.CodeUnauthorized, "unauthorized: only stakers may propose"), 403, api.CodeForbidden, api.ErrForbidden, ""},
		{rejected(ledger.CodeBadSignature, "bad signature: signature does not match"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeWrongChain, "wrong chain id: tx for x, chain is y"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeInvalidMsg, "invalid message: role must be node or validator"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeLocked, "tokens locked by vesting: A has 5 OMNI still vesting"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeStakeTooLow, "stake too low: validators need 10000 OMNI"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeDecode, "malformed transaction: 3 bytes"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{rejected(ledger.CodeNotFound, "not found: proposal 9"), 400, api.CodeBadRequest, api.ErrBadRequest, "tx"},
		{fmt.Errorf("%w: broadcast: connection refused", api.ErrUnavailable), 503, api.CodeUnavailable, api.ErrUnavailable, ""},
		{errors.New("disk on fire"), 500, api.CodeInternal, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.err.Error(), func(t *testing.T) {
			svc := newFake()
			svc.txErr = tt.err
			h := newTestHandler(t, svc)
			rec := serve(h, http.MethodPost, "/v1/chain/txs", []byte(`{"tx":"AQID"}`))
			var body api.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Code != tt.code || body.Field != tt.field {
				t.Errorf("got %d %+v, want %d %s field %q", rec.Code, body, tt.status, tt.code, tt.field)
			}
			if retry := rec.Header().Get("Retry-After"); (tt.status == 429) != (retry != "") {
				t.Errorf("Retry-After %q with status %d", retry, rec.Code)
			}
			if tt.status < 500 && !strings.HasSuffix(body.Error, tt.err.Error()) {
				t.Errorf("message %q does not carry the ledger's %q", body.Error, tt.err)
			}
			if tt.sentinel == nil {
				return
			}
			c := newTestClient(t, h)
			c.Retries429 = -1 // the fake refuses every time
			_, err := c.BroadcastTx(t.Context(), []byte{1})
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("client error %v does not wrap %v", err, tt.sentinel)
			}
		})
	}
}

// GET /v1/chain/blocks passes the limit on, checks it, and says so where no chain RPC is read.
func TestBlocksRoute(t *testing.T) {
	var asked int
	h, err := NewHandler(Options{Service: newFake(), Blocks: func(_ context.Context, limit int) ([]api.Block, error) {
		asked = limit
		return []api.Block{{Height: 7, Txs: []api.BlockTx{{Hash: "AB", Kind: "create_job"}}}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(h.(*server), http.MethodGet, "/v1/chain/blocks?limit=5", nil)
	var got []api.Block
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || asked != 5 || len(got) != 1 || got[0].Txs[0].Kind != "create_job" {
		t.Fatalf("blocks: %d %s (limit asked %d)", rec.Code, rec.Body, asked)
	}
	if rec := serve(h.(*server), http.MethodGet, "/v1/chain/blocks?limit=1000", nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("limit 1000: %d", rec.Code)
	}
	if rec := serve(newTestHandler(t, newFake()), http.MethodGet, "/v1/chain/blocks", nil); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("without a block reader: %d", rec.Code)
	}
}
