package chain

import (
	"context"
	"fmt"
	"log/slog"

	abci "github.com/cometbft/cometbft/abci/types"
	cmted "github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/store"
)

// abciApp adapts ledger.App to CometBFT's ABCI 2.0 interface. CometBFT's local client
// serialises every call behind one mutex, so the ledger sees no concurrency; but a query
// may run between a block's FinalizeBlock and its Commit.
type abciApp struct {
	abci.BaseApplication
	app *ledger.App
	// store is the ledger's store, which proves what it holds: proofs are served here
	// because the ledger cannot import the package that implements its Store.
	store   *store.Store
	log     *slog.Logger
	metrics *chainMetrics // nil counts nothing
}

var _ abci.Application = (*abciApp)(nil)

const appVersion = 1

func (a *abciApp) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	height, hash := a.app.Info()
	return &abci.InfoResponse{
		Data: "omnisync-ledger", Version: "v1", AppVersion: appVersion,
		LastBlockHeight: height, LastBlockAppHash: hash,
	}, nil
}

func (a *abciApp) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	hash, vals, err := a.app.InitChain(req.ChainId, req.AppStateBytes)
	if err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	// The ledger's validator set is authoritative; CometBFT replaces genesis.json's list
	// with it, so the two cannot drift apart.
	return &abci.InitChainResponse{AppHash: hash, Validators: toABCIValidators(vals)}, nil
}

func (a *abciApp) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	r := a.app.CheckTx(req.Tx)
	return &abci.CheckTxResponse{Code: uint32(r.Code), Log: r.Log}, nil
}

func (a *abciApp) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	b := ledger.Block{Height: req.Height, Time: req.Time, Hash: req.Hash, Txs: req.Txs}
	for _, m := range req.Misbehavior {
		if m.Type == abci.MISBEHAVIOR_TYPE_DUPLICATE_VOTE {
			b.Misbehavior = append(b.Misbehavior, ledger.Misbehavior{ConsensusAddress: m.Validator.Address, Height: m.Height})
		}
	}
	res, err := a.app.FinalizeBlock(b)
	if err != nil {
		return nil, err
	}
	a.metrics.finalized(res.TxResults)
	out := &abci.FinalizeBlockResponse{
		AppHash: res.AppHash, Events: toABCIEvents(res.Events), ValidatorUpdates: toABCIValidators(res.ValidatorUpdates),
	}
	for _, r := range res.TxResults {
		out.TxResults = append(out.TxResults, &abci.ExecTxResult{Code: uint32(r.Code), Log: r.Log, Events: toABCIEvents(r.Events)})
	}
	return out, nil
}

func (a *abciApp) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	height, _, err := a.app.Commit()
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	a.metrics.committed(height)
	return &abci.CommitResponse{}, nil
}

func (a *abciApp) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	if req.Prove {
		return a.proveQuery(req), nil
	}
	height, _ := a.app.Info()
	v, err := a.app.Query(req.Path)
	if err != nil {
		return &abci.QueryResponse{Code: uint32(ledger.CodeFor(err)), Log: err.Error(), Height: height}, nil
	}
	return &abci.QueryResponse{Value: v, Height: height}, nil
}

func toABCIValidators(vals []ledger.ValidatorUpdate) []abci.ValidatorUpdate {
	out := make([]abci.ValidatorUpdate, 0, len(vals))
	for _, v := range vals {
		out = append(out, abci.NewValidatorUpdate(cmted.PubKey(v.PubKey), v.Power))
	}
	return out
}

// indexAttrs is whether the chain node's indexers index every event attribute (tx_search
// and block_search by event). Nothing of ours searches by event: txs are looked up by
// hash, which the tx indexer indexes anyway, and the ledger answers every other question.
// Indexing about 26 attributes a job cost an index write each (BenchmarkTxIndexAttrs), and
// goleveldb's compactions after them. Not consensus: results hash without their events.
const indexAttrs = false

func toABCIEvents(events []ledger.Event) []abci.Event {
	out := make([]abci.Event, 0, len(events))
	for _, e := range events {
		ev := abci.Event{Type: e.Type, Attributes: make([]abci.EventAttribute, 0, len(e.Attrs))}
		for _, at := range e.Attrs {
			ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: at.Key, Value: at.Value, Index: indexAttrs})
		}
		out = append(out, ev)
	}
	return out
}
