package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/omnisync/omnisync/internal/ledger"
)

// fill sets every field of v (a pointer) to a non-zero value, recursively.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i))
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte("7"))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
	}
}

// The chain wire types carry exactly the ledger's JSON, so a daemon may pass query results
// through: a fully populated ledger value decodes into the api type with no unknown field
// and encodes back to the same JSON.
func TestChainTypesMirrorLedger(t *testing.T) {
	pairs := []struct{ ledger, api any }{
		{&ledger.AccountView{}, &ChainAccount{}},
		{&ledger.Vesting{}, &Vesting{}},
		{&ledger.Params{}, &Params{}},
		{&ledger.RouterWeights{}, &RouterWeights{}},
		{&ledger.Proposal{}, &Proposal{}},
		{&ledger.Spend{}, &Spend{}},
		{&ledger.Unbonding{}, &Unbonding{}},
		{&ledger.NodeHistory{}, &NodeHistory{}},
		{&ledger.RewardWindow{}, &RewardWindow{}},
	}
	for _, p := range pairs {
		name := reflect.TypeOf(p.api).Elem().Name()
		fill(reflect.ValueOf(p.ledger).Elem())
		want, err := json.Marshal(p.ledger)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.DisallowUnknownFields()
		if err := dec.Decode(p.api); err != nil {
			t.Errorf("%s: ledger JSON does not decode: %v", name, err)
			continue
		}
		if got, _ := json.Marshal(p.api); !sameJSON(got, want) {
			t.Errorf("%s round trip:\n got %s\nwant %s", name, got, want)
		}
	}
}

// sameJSON compares two JSON documents, ignoring object key order.
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func TestChainClient(t *testing.T) {
	var gotMethod, gotPath string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotMethod, gotPath = r.Method, r.URL.EscapedPath()
		gotBody, _ = io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/v1/chain/txs":
			w.WriteHeader(http.StatusPaymentRequired)
			io.WriteString(w, `{"error":"insufficient funds: a has 1 OMNI, needs 2 OMNI","code":"insufficient_funds"}`)
		case "/v1/chain/proposals/12":
			io.WriteString(w, `{"id":12,"title":"t","status":"voting","params":{"burn_bp":300}}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL)
	ctx := t.Context()

	if _, err := c.ChainAccount(ctx, "a/b"); err != nil || gotPath != "/v1/chain/accounts/a%2Fb" {
		t.Errorf("ChainAccount: path %q, %v", gotPath, err)
	}
	p, err := c.Proposal(ctx, 12)
	if err != nil || p.ID != 12 || string(p.Params["burn_bp"]) != "300" {
		t.Errorf("Proposal = %+v, %v", p, err)
	}
	_, err = c.BroadcastTx(ctx, []byte{1, 2, 3})
	if gotMethod != http.MethodPost || string(gotBody) != `{"tx":"AQID"}` {
		t.Errorf("BroadcastTx sent %s %s", gotMethod, gotBody)
	}
	if !errors.Is(err, ErrInsufficientFunds) || err.Error() != "insufficient funds: a has 1 OMNI, needs 2 OMNI" {
		t.Errorf("BroadcastTx error %v", err)
	}
}
