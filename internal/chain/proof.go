package chain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	rpcclient "github.com/cometbft/cometbft/rpc/client"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// Proofs of ledger state (DESIGN §2). An ABCI query of account/<addr> with prove set
// answers with the account's record as the store holds it (Key, Value; no Value: never
// written), the height H of the state it was read from, and one ProofOp of type
// ProofOpType whose Data is a store.Proof in its wire form (store.Proof.Encode).
//
// Which app hash it proves against: the store's commit at height H, the state after block
// H. CometBFT records that hash in the header of block H+1, not of block H (whose AppHash
// is the state after block H-1), so a client verifies the proof against the AppHash of
// header H+1, read from /commit, and waits for that block when H is the newest.
const ProofOpType = "omnisync/bucket"

// A proof query the store cannot answer yet gets a code in its own codespace: the
// ledger's codes number tx rejections and are part of the protocol.
const (
	proofCodespace = "omnisync/proof"
	// codeProofBusy: a block is finalised but not yet committed, and the store proves
	// only committed state. CometBFT runs Query between FinalizeBlock and Commit (one
	// mutex serialises the calls, not the pair), so a client asks again.
	codeProofBusy = 1
)

// proveQuery answers a query with prove set.
func (a *abciApp) proveQuery(req *abci.QueryRequest) *abci.QueryResponse {
	// The height and the proof are read under the same ABCI mutex, so they agree.
	height, _ := a.app.Info()
	fail := func(err error) *abci.QueryResponse {
		return &abci.QueryResponse{Code: uint32(ledger.CodeFor(err)), Log: err.Error(), Height: height}
	}
	if req.Height != 0 && req.Height != height {
		return fail(fmt.Errorf("%w: proofs are of the latest state (height %d), not of height %d", ledger.ErrNotFound, height, req.Height))
	}
	addr, ok := strings.CutPrefix(strings.TrimLeft(req.Path, "/"), "account/")
	if !ok {
		return fail(fmt.Errorf("%w: no proofs for query path %q: proofs cover account/<addr>", ledger.ErrNotFound, req.Path))
	}
	if err := keys.Address(addr).Validate(); err != nil {
		return fail(fmt.Errorf("%w: %v", ledger.ErrInvalidMsg, err))
	}
	key := ledger.AccountKey(keys.Address(addr))
	value, proof, err := a.store.Prove(key)
	if errors.Is(err, store.ErrStaged) {
		return &abci.QueryResponse{Code: codeProofBusy, Codespace: proofCodespace, Log: err.Error(), Height: height}
	}
	if err != nil {
		return fail(err)
	}
	return &abci.QueryResponse{
		Key: key, Value: value, Height: height,
		ProofOps: &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Key: key, Data: proof.Encode()}}},
	}
}

// ProvenAccount is an account read with a proof that verified against a committed block
// header's app hash.
type ProvenAccount struct {
	ledger.Account
	// Height is the block after which the account is as shown; AppHash is the app hash
	// of that state, read from the header of block Height+1.
	Height  int64
	AppHash []byte
}

// ProveAccount reads an account with a proof and verifies the proof against the app hash
// in the header of the next block, which it waits for when the state is the newest. An
// error wrapping store.ErrBadProof means the node's answer is not the committed state.
//
// The header is taken from the same node: the proof shows the answer is what the header
// commits to, and trusting the header is a light client's job (checking its validators'
// signatures against a trusted validator set), which this does not do.
func (c *Client) ProveAccount(ctx context.Context, a keys.Address) (ProvenAccount, error) {
	if err := a.Validate(); err != nil {
		return ProvenAccount{}, err
	}
	res, err := c.queryProof(ctx, "account/"+string(a))
	if err != nil {
		return ProvenAccount{}, err
	}
	appHash, err := c.appHashAfter(ctx, res.Height)
	if err != nil {
		return ProvenAccount{}, err
	}
	acc, err := verifyAccount(a, res, appHash)
	if err != nil {
		return ProvenAccount{}, fmt.Errorf("account %s at height %d: %w", a, res.Height, err)
	}
	return ProvenAccount{Account: acc, Height: res.Height, AppHash: appHash}, nil
}

// queryProof asks for a proof, again while the node has a block finalised but not
// committed (codeProofBusy; the pause is short).
func (c *Client) queryProof(ctx context.Context, path string) (*abci.QueryResponse, error) {
	for {
		res, err := c.rpc.ABCIQueryWithOptions(ctx, path, nil, rpcclient.ABCIQueryOptions{Prove: true})
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", path, err)
		}
		r := res.Response
		if r.Codespace == proofCodespace && r.Code == codeProofBusy {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("query %s: %s: %w", path, r.Log, ctx.Err())
			case <-time.After(10 * time.Millisecond):
				continue
			}
		}
		if r.Code != 0 {
			return nil, ledger.ErrorFor(ledger.Code(r.Code), r.Log)
		}
		if r.Height < 1 {
			return nil, fmt.Errorf("query %s: %w: the answer is of height %d, before the first block", path, store.ErrBadProof, r.Height)
		}
		return &r, nil
	}
}

// appHashAfter is the app hash of the state after block h: the AppHash of block h+1's
// header, read from its commit once the block is there.
func (c *Client) appHashAfter(ctx context.Context, h int64) ([]byte, error) {
	next := h + 1
	if err := c.WaitForHeight(ctx, next); err != nil {
		return nil, fmt.Errorf("block %d, whose header holds the app hash to check the proof against, did not commit: %w", next, err)
	}
	res, err := c.rpc.Commit(ctx, &next)
	if err != nil {
		return nil, fmt.Errorf("header of block %d: %w", next, err)
	}
	// The header must be the one its commit signs (ValidateBasic compares the hashes).
	if res.Header == nil || res.Commit == nil || res.Height != next {
		return nil, fmt.Errorf("header of block %d: the node sent no header of that height", next)
	}
	if err := res.SignedHeader.ValidateBasic(res.ChainID); err != nil {
		return nil, fmt.Errorf("header of block %d: %w", next, err)
	}
	return res.AppHash, nil
}

// verifyAccount checks a proof query's answer against appHash and decodes the account it
// proves. Everything in res is untrusted.
func verifyAccount(a keys.Address, res *abci.QueryResponse, appHash []byte) (ledger.Account, error) {
	key := ledger.AccountKey(a)
	if !bytes.Equal(res.Key, key) {
		return ledger.Account{}, fmt.Errorf("%w: the answer is about key %q, not %q", store.ErrBadProof, res.Key, key)
	}
	proof, err := proofFromOps(key, res.ProofOps)
	if err != nil {
		return ledger.Account{}, err
	}
	value, _, err := proof.Verify(appHash, key)
	if err != nil {
		return ledger.Account{}, err
	}
	// The value comes from the proof; the answer's own must agree with it.
	if !bytes.Equal(value, res.Value) {
		return ledger.Account{}, fmt.Errorf("%w: the answer's value is not the one its proof shows", store.ErrBadProof)
	}
	return ledger.DecodeAccount(a, value)
}

// proofFromOps decodes the one proof op an answer about key must carry.
func proofFromOps(key []byte, ops *cmtcrypto.ProofOps) (store.Proof, error) {
	if ops == nil || len(ops.Ops) != 1 {
		n := 0
		if ops != nil {
			n = len(ops.Ops)
		}
		return store.Proof{}, fmt.Errorf("%w: the answer carries %d proof ops, want 1", store.ErrBadProof, n)
	}
	op := ops.Ops[0]
	if op.Type != ProofOpType {
		return store.Proof{}, fmt.Errorf("%w: proof op of type %q, want %q", store.ErrBadProof, op.Type, ProofOpType)
	}
	if !bytes.Equal(op.Key, key) {
		return store.Proof{}, fmt.Errorf("%w: proof op is about key %q, not %q", store.ErrBadProof, op.Key, key)
	}
	return store.DecodeProof(op.Data)
}
