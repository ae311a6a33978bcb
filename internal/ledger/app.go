package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// Block is what consensus hands the ledger: the height, the proposer's block time (the only
// clock consensus code may read), the block hash (an unpredictable seed) and the txs.
type Block struct {
	Height int64
	Time   time.Time
	Hash   []byte
	Txs    [][]byte
}

// Attr and Event describe what a transaction did, for indexers and subscribers.
type Attr struct{ Key, Value string }

// Event is a typed, attributed record of a state change.
type Event struct {
	Type  string
	Attrs []Attr
}

// TxResult is the outcome of one transaction.
type TxResult struct {
	Code   Code
	Log    string
	Events []Event
}

// BlockResult is the outcome of a block.
type BlockResult struct {
	TxResults []TxResult
	Events    []Event
	AppHash   []byte
}

// App is the OMNI ledger. It is not safe for concurrent use: consensus serialises calls.
type App struct {
	store   Store
	chainID string
	// checkSeq holds the next sequence per signer for txs admitted to the mempool since the
	// last commit, so a client may send several txs per block.
	checkSeq map[keys.Address]uint64
}

// New opens the ledger over a store (which may already hold committed state).
func New(store Store) (*App, error) {
	a := &App{store: store, checkSeq: map[keys.Address]uint64{}}
	if v, _ := store.LastCommit(); v > 0 {
		id, err := store.Get(keyChainID)
		if err != nil {
			return nil, fmt.Errorf("read chain id: %w", err)
		}
		a.chainID = string(id)
	}
	return a, nil
}

// Info returns the last committed height and app hash.
func (a *App) Info() (height int64, appHash []byte) { return a.store.LastCommit() }

// ChainID is the chain this ledger was initialised for.
func (a *App) ChainID() string { return a.chainID }

// InitChain writes the genesis state into the working set and returns its hash.
func (a *App) InitChain(chainID string, genesisJSON []byte) ([]byte, error) {
	if chainID == "" {
		return nil, fmt.Errorf("empty chain id")
	}
	g, err := ParseGenesis(genesisJSON)
	if err != nil {
		return nil, err
	}
	st := state{kv: a.store}
	if err := a.store.Set(keyChainID, []byte(chainID)); err != nil {
		return nil, err
	}
	if err := g.apply(st); err != nil {
		return nil, err
	}
	a.chainID = chainID
	return a.store.WorkingHash(), nil
}

// CheckTx decides whether a tx may enter the mempool: it runs the tx against committed
// state plus the sequences already admitted, and writes nothing.
func (a *App) CheckTx(raw []byte) TxResult {
	tx, err := DecodeTx(raw)
	if err != nil {
		return failure(err)
	}
	view, err := a.store.Committed()
	if err != nil {
		return failure(err)
	}
	scratch := newOverlay(readOnly{view})
	acc, err := state{kv: scratch}.account(tx.Signer)
	if err != nil {
		return failure(err)
	}
	if next, ok := a.checkSeq[tx.Signer]; ok {
		acc.Seq = next
		if err := (state{kv: scratch}).setAccount(acc); err != nil {
			return failure(err)
		}
	}
	ctx := &execCtx{st: state{kv: scratch}, chainID: a.chainID}
	if _, err := ctx.run(tx); err != nil {
		return failure(err)
	}
	a.checkSeq[tx.Signer] = tx.Body.Seq + 1
	return TxResult{Code: CodeOK}
}

// FinalizeBlock executes a block's txs in order, stages the writes and returns the
// resulting app hash. It returns an error only for a broken store.
func (a *App) FinalizeBlock(b Block) (BlockResult, error) {
	st := state{kv: a.store}
	res := BlockResult{TxResults: make([]TxResult, len(b.Txs))}
	for i, raw := range b.Txs {
		tx, err := DecodeTx(raw)
		if err != nil {
			res.TxResults[i] = failure(err)
			continue
		}
		ov := newOverlay(a.store)
		ctx := &execCtx{st: state{kv: ov}, chainID: a.chainID, block: b, txHash: tx.Hash}
		events, err := ctx.run(tx)
		if err != nil {
			res.TxResults[i] = failure(err)
			continue
		}
		if err := ov.flush(); err != nil {
			return BlockResult{}, fmt.Errorf("flush tx %d: %w", i, err)
		}
		res.TxResults[i] = TxResult{Code: CodeOK, Events: events}
	}
	expired, err := expireJobs(st, b)
	if err != nil {
		return BlockResult{}, fmt.Errorf("expire jobs: %w", err)
	}
	res.Events = expired
	res.AppHash = a.store.WorkingHash()
	return res, nil
}

// Commit persists the staged block.
func (a *App) Commit() (height int64, appHash []byte, err error) {
	hash, version, err := a.store.Commit()
	if err != nil {
		return 0, nil, err
	}
	a.checkSeq = map[keys.Address]uint64{}
	return version, hash, nil
}

func failure(err error) TxResult { return TxResult{Code: CodeFor(err), Log: err.Error()} }

// readOnly adapts a Reader to the write interface the overlay wants; the overlay never
// flushes in CheckTx, so writes never reach it.
type readOnly struct{ Reader }

func (readOnly) Set(_, _ []byte) error { return fmt.Errorf("read-only view") }
func (readOnly) Delete(_ []byte) error { return fmt.Errorf("read-only view") }

// expireJobs refunds, in full, every open job whose deadline has passed by block time.
func expireJobs(st state, b Block) ([]Event, error) {
	now := b.Time.Unix()
	type due struct {
		key []byte
		id  string
	}
	var list []due
	err := st.kv.Iterate(prefixJobExp, func(k, _ []byte) bool {
		var deadline uint64
		var id string
		if _, err := fmt.Sscanf(string(k[len(prefixJobExp):]), "%016x/%s", &deadline, &id); err != nil {
			return true
		}
		if int64(deadline) > now {
			return false
		}
		list = append(list, due{append([]byte{}, k...), id})
		return true
	})
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, d := range list {
		j, err := st.job(d.id)
		if err != nil {
			return nil, err
		}
		if err := st.kv.Delete(d.key); err != nil {
			return nil, err
		}
		if !j.Open() {
			continue
		}
		sp, err := st.supply()
		if err != nil {
			return nil, err
		}
		if err := refundEscrow(st, &sp, &j, JobExpired, b.Height); err != nil {
			return nil, err
		}
		if err := st.put(keySupply, sp); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "job_expired", Attrs: []Attr{{"job_id", j.ID}, {"refunded", fmt.Sprint(j.Budget)}}})
	}
	return events, nil
}

// refundEscrow returns a job's whole budget to its consumer and closes it with status.
func refundEscrow(st state, sp *Supply, j *Job, status string, height int64) error {
	var err error
	if sp.Escrowed, err = sub(sp.Escrowed, j.Budget); err != nil {
		return fmt.Errorf("escrow underflow: %w", err)
	}
	if err := st.credit(sp, j.Consumer, j.Budget); err != nil {
		return err
	}
	j.Status = status
	j.Settlement = &Settlement{Refunded: j.Budget, Height: height}
	if err := st.kv.Delete(jobExpKey(j.DeadlineUnix, j.ID)); err != nil {
		return err
	}
	return st.put(jobKey(j.ID), j)
}

func jobSeed(blockHash []byte, jobID string) string {
	h := sha256.Sum256(append(append([]byte{}, blockHash...), jobID...))
	return hex.EncodeToString(h[:])
}

// Query answers read-only requests against the last committed state. Paths:
// account/<addr>, node/<addr>, nodes, job/<id>, supply, params, validators, chain_id.
func (a *App) Query(path string) ([]byte, error) {
	view, err := a.store.Committed()
	if err != nil {
		return nil, err
	}
	st := state{kv: readOnly{view}}
	kind, arg := splitPath(path)
	var v any
	switch kind {
	case "account":
		addr := keys.Address(arg)
		if err := addr.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
		}
		acc, err := st.account(addr)
		if err != nil {
			return nil, err
		}
		v = acc
	case "node":
		n, ok, err := st.node(keys.Address(arg))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: node %s", ErrNotFound, arg)
		}
		v = n
	case "nodes":
		var nodes []Node
		var derr error
		if err := view.Iterate(prefixNode, func(_, b []byte) bool {
			var n Node
			derr = json.Unmarshal(b, &n)
			nodes = append(nodes, n)
			return derr == nil
		}); err != nil {
			return nil, err
		}
		if derr != nil {
			return nil, derr
		}
		v = nodes
	case "job":
		j, err := st.job(arg)
		if err != nil {
			return nil, err
		}
		v = j
	case "supply":
		sp, err := st.supply()
		if err != nil {
			return nil, err
		}
		v = sp
	case "params":
		p, err := st.params()
		if err != nil {
			return nil, err
		}
		v = p
	case "validators":
		vals, err := st.validators()
		if err != nil {
			return nil, err
		}
		v = vals
	case "chain_id":
		v = a.chainID
	default:
		return nil, fmt.Errorf("%w: unknown query path %q", ErrNotFound, path)
	}
	return json.Marshal(v)
}

func splitPath(p string) (kind, arg string) {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i], p[i+1:]
		}
	}
	return p, ""
}
