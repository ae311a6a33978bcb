package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/keys"
)

// Block is what consensus hands the ledger: the height, the proposer's block time (the only
// clock consensus code may read), the block hash (an unpredictable seed), the txs and any
// evidence of validator misbehaviour.
type Block struct {
	Height      int64
	Time        time.Time
	Hash        []byte
	Txs         [][]byte
	Misbehavior []Misbehavior
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
	// Kind is the tx's message kind (Msg.Kind) when it decoded, "" when it did not; it is
	// reported (metrics), not hashed.
	Kind string
}

// BlockResult is the outcome of a block.
type BlockResult struct {
	TxResults        []TxResult
	Events           []Event
	ValidatorUpdates []ValidatorUpdate
	AppHash          []byte
}

// App is the OMNI ledger. It is not safe for concurrent use: consensus serialises calls.
type App struct {
	store   Store
	chainID string
	// checkSeq holds the next sequence per signer for txs admitted to the mempool since the
	// last commit, so a client may send several txs per block; checkSpent what those txs
	// take from the signer's balance, so that together they never promise more than it
	// holds (escrows that pass one by one and fail in their block, after their inputs were
	// stored, and with several routers, whose own counts each see only their jobs).
	checkSeq   map[keys.Address]uint64
	checkSpent map[keys.Address]uint64
	// verified remembers txs whose signature CheckTx already checked, so FinalizeBlock
	// does not verify them again: ed25519 verification bounds the ledger's throughput.
	verified *txCache
	// checkView and checkBlk are the committed state and the block context CheckTx runs
	// against, loaded once per commit rather than once per tx; scratch takes a CheckTx's
	// writes, which are then dropped, through a journal as in FinalizeBlock (a batch's
	// items roll back alone).
	checkView Reader
	checkBlk  *blockCtx
	scratch   *overlay
	checkTx   journal
	// nodesChanged is the height at which each node record was last written, for every
	// write committed after height nodesFrom (the last commit when the App opened), so the
	// query nodes_since answers with the nodes that changed rather than all of them.
	// blockNodes are the node keys the block being finalised wrote. Kept in memory only:
	// it is not state, and a reader from before nodesFrom is answered in full.
	nodesChanged map[keys.Address]int64
	nodesFrom    int64
	blockNodes   []string
}

// New opens the ledger over a store (which may already hold committed state).
func New(store Store) (*App, error) {
	a := &App{store: store, checkSeq: map[keys.Address]uint64{}, checkSpent: map[keys.Address]uint64{}, verified: newTxCache(200_000), nodesChanged: map[keys.Address]int64{}}
	a.nodesFrom, _ = store.LastCommit()
	if v := a.nodesFrom; v > 0 {
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

// InitChain writes the genesis state into the working set and returns its hash and the
// initial validator set.
func (a *App) InitChain(chainID string, genesisJSON []byte) ([]byte, []ValidatorUpdate, error) {
	if chainID == "" {
		return nil, nil, fmt.Errorf("empty chain id")
	}
	g, err := ParseGenesis(genesisJSON)
	if err != nil {
		return nil, nil, err
	}
	st := state{kv: a.store}
	if err := a.store.Set(keyChainID, []byte(chainID)); err != nil {
		return nil, nil, err
	}
	if err := g.apply(st); err != nil {
		return nil, nil, err
	}
	a.chainID = chainID
	var vals []ValidatorUpdate
	for _, v := range g.Validators {
		vals = append(vals, ValidatorUpdate{PubKey: v.PubKey, Power: v.Power()})
	}
	return a.store.WorkingHash(), vals, nil
}

// decode parses a tx, reusing the checks CheckTx already made: a tx enters the cache only
// once its signature verified and its message passed ValidateBasic, so wellFormed says the
// latter need not run again.
func (a *App) decode(raw []byte) (tx Tx, wellFormed bool, err error) {
	h := HashTx(raw)
	if tx, ok := a.verified.get(h); ok {
		return tx, true, nil
	}
	tx, err = DecodeTx(raw)
	return tx, false, err
}

// MaxPending is how many txs one account may have in the mempool beyond its committed
// sequence. It bounds what one key can queue (and what a block that fails one of its txs
// throws away); a signer that pipelines stays below it.
const MaxPending = 64

// CheckTx decides whether a tx may enter the mempool: it runs the tx against committed
// state, and writes nothing but the account's next mempool sequence and what the txs it
// admitted spend of the account's balance.
//
// The balance rule: a tx runs against the committed balance less what the account's txs
// admitted since the last commit spend (their income, a refund say, waits for its
// block), so an account's txs in a mempool never promise more than it holds. Another
// chain node's mempool, before gossip, or a change in the block (a slash) can still make
// one fail in its block.
//
// The sequence rule: a tx must carry the account's next mempool sequence, which is its
// committed sequence until CheckTx admits a tx, and one past the last admitted tx after
// that. So a client may send seq, seq+1, … without waiting for blocks; a gap, a reused
// sequence or a tx beyond MaxPending is rejected. Commit forgets the mempool sequences:
// CometBFT then re-checks the txs left in the mempool in the order they were admitted,
// which rebuilds them from the new committed state and drops the txs that no longer fit
// (those after a tx of the same account that failed in the block: a failed tx does not
// use up its sequence), and what they spend. FinalizeBlock keeps the strict rule: seq
// must equal the account's sequence at that point of the block.
func (a *App) CheckTx(raw []byte) TxResult {
	tx, wellFormed, err := a.decode(raw)
	if err != nil {
		return failure(err)
	}
	st, blk, err := a.checkState()
	if err != nil {
		return failure(err)
	}
	acc, err := st.account(tx.Signer)
	if err != nil {
		return failure(err)
	}
	if next, ok := a.checkSeq[tx.Signer]; ok {
		if tx.Body.Seq == next && next-acc.Seq >= MaxPending {
			return failure(fmt.Errorf("%w: account %s has %d txs in the mempool, the most it may have; wait for a block",
				ErrTooManyPending, tx.Signer, next-acc.Seq))
		}
		acc.Seq = next
		acc.Balance -= min(a.checkSpent[tx.Signer], acc.Balance) // each was admitted against what was left
		if err := st.setAccount(acc); err != nil {
			return failure(err)
		}
	}
	if _, err := (&execCtx{st: st, blk: blk, wellFormed: wellFormed}).run(tx, a.chainID); err != nil {
		if spent := a.checkSpent[tx.Signer]; spent > 0 && errors.Is(err, ErrInsufficientFunds) {
			err = fmt.Errorf("%w (%s OMNI of the committed balance is spent by the account's txs waiting for a block)", err, FormatOMNI(spent))
		}
		return failure(err)
	}
	if after, err := st.account(tx.Signer); err == nil && after.Balance < acc.Balance {
		a.checkSpent[tx.Signer] += acc.Balance - after.Balance // income waits for its block
	}
	a.checkSeq[tx.Signer] = tx.Body.Seq + 1
	a.verified.put(tx.Hash, tx)
	return TxResult{Code: CodeOK}
}

// NextSequence is the sequence CheckTx admits next for addr: the committed sequence, or
// one past the last tx admitted to the mempool since the last commit.
func (a *App) NextSequence(addr keys.Address) (uint64, error) {
	if next, ok := a.checkSeq[addr]; ok {
		return next, nil
	}
	st, _, err := a.checkState()
	if err != nil {
		return 0, err
	}
	acc, err := st.account(addr)
	return acc.Seq, err
}

// checkState is an empty scratch view over the committed state, and the block context
// CheckTx runs in (read once per commit).
func (a *App) checkState() (state, *blockCtx, error) {
	if a.checkView == nil {
		view, err := a.store.Committed()
		if err != nil {
			return state{}, nil, err
		}
		blk, err := loadBlockCtx(state{kv: readOnly{view}}, 0, nil)
		if err != nil {
			return state{}, nil, err
		}
		a.checkView, a.checkBlk = view, blk
	}
	if a.scratch == nil {
		a.scratch = newOverlay(readOnly{a.checkView})
	}
	a.scratch.reset(readOnly{a.checkView})
	a.checkTx = journal{o: a.scratch, undo: a.checkTx.undo[:0]}
	return state{kv: &a.checkTx}, a.checkBlk, nil
}

// loadBlockCtx reads the parameters and supply a block starts from. A zero height means a
// CheckTx view: the time is the last block's.
func loadBlockCtx(st state, height int64, b *Block) (*blockCtx, error) {
	p, err := st.params()
	if err != nil {
		return nil, err
	}
	sp, err := st.supply()
	if err != nil {
		return nil, err
	}
	blk := &blockCtx{height: height, params: p, supply: sp.clone(), valChanged: map[keys.Address][]byte{}}
	if b != nil {
		blk.now, blk.hash = b.Time.Unix(), b.Hash
	} else if t, ok, err := getRecord[int64](st.kv, keyBlockTime); err == nil && ok {
		blk.now = t
	}
	return blk, nil
}

// flushEvery is how many txs a block runs between handing its writes to the store.
const flushEvery = 1000

// FinalizeBlock executes a block's txs in order, stages the writes and returns the
// resulting app hash. It returns an error only for a broken store.
func (a *App) FinalizeBlock(b Block) (BlockResult, error) {
	// The block's writes collect in an overlay that reaches the store every flushEvery
	// txs: keys written by many txs in between (a busy account, a validator) are set once,
	// and the store can hash what it has while the next txs run.
	blockView := newBlockOverlay(a.store, 3*min(len(b.Txs), flushEvery)+64)
	st := state{kv: blockView}
	blk, err := loadBlockCtx(st, b.Height, &b)
	if err != nil {
		return BlockResult{}, err
	}
	res := BlockResult{TxResults: make([]TxResult, len(b.Txs))}
	if res.Events, err = punishDoubleSigns(st, blk, b.Misbehavior); err != nil {
		return BlockResult{}, fmt.Errorf("evidence: %w", err)
	}
	txWrites := &journal{o: blockView}
	for i, raw := range b.Txs {
		tx, wellFormed, err := a.decode(raw)
		if err != nil {
			res.TxResults[i] = failure(err)
			continue
		}
		ctx := &execCtx{st: state{kv: txWrites}, blk: blk, wellFormed: wellFormed}
		events, err := ctx.run(tx, a.chainID)
		if err != nil {
			txWrites.rollback()
			res.TxResults[i] = failure(err)
			res.TxResults[i].Kind = tx.Body.Kind()
			continue
		}
		txWrites.keep()
		ctx.commit()
		res.TxResults[i] = TxResult{Code: CodeOK, Events: events, Kind: tx.Body.Kind()}
		if (i+1)%flushEvery == 0 {
			if err := a.flushBlock(blockView); err != nil {
				return BlockResult{}, fmt.Errorf("stage txs up to %d: %w", i, err)
			}
		}
	}
	ev, err := endBlock(st, blk)
	if err != nil {
		return BlockResult{}, fmt.Errorf("end block: %w", err)
	}
	res.Events = append(res.Events, ev...)
	if err := recordHistory(st, blk, &res); err != nil {
		return BlockResult{}, fmt.Errorf("history: %w", err)
	}
	if res.ValidatorUpdates, err = validatorUpdates(st, blk); err != nil {
		return BlockResult{}, err
	}
	if err := st.put(keySupply, blk.supply); err != nil {
		return BlockResult{}, err
	}
	if err := st.put(keyBlockTime, blk.now); err != nil {
		return BlockResult{}, err
	}
	if err := a.flushBlock(blockView); err != nil {
		return BlockResult{}, fmt.Errorf("stage block: %w", err)
	}
	res.AppHash = a.store.WorkingHash()
	return res, nil
}

// flushBlock hands the block's writes so far to the store, noting the node records
// among them (nodesChanged).
func (a *App) flushBlock(blockView *overlay) error {
	a.blockNodes = append(a.blockNodes, blockView.tables[string(prefixNode)]...)
	return blockView.flush()
}

// Commit persists the staged block.
func (a *App) Commit() (height int64, appHash []byte, err error) {
	hash, version, err := a.store.Commit()
	if err != nil {
		return 0, nil, err
	}
	for _, k := range a.blockNodes {
		a.nodesChanged[keys.Address(strings.TrimPrefix(k, string(prefixNode)))] = version
	}
	a.blockNodes = a.blockNodes[:0]
	a.checkSeq, a.checkSpent = map[keys.Address]uint64{}, map[keys.Address]uint64{}
	a.checkView, a.checkBlk = nil, nil
	return version, hash, nil
}

func failure(err error) TxResult { return TxResult{Code: CodeFor(err), Log: err.Error()} }

// readOnly adapts a Reader to the write interface the overlay wants; the overlay never
// flushes in CheckTx, so writes never reach it.
type readOnly struct{ Reader }

func (readOnly) Set(_, _ []byte) error { return fmt.Errorf("read-only view") }
func (readOnly) Delete(_ []byte) error { return fmt.Errorf("read-only view") }

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

// SupplyView is the supply as queries report it: Liquid excludes what vesting still
// locks, which is reported as Vesting, so every bucket adds up to Total.
type SupplyView struct {
	Total     uint64            `json:"total"`
	Liquid    uint64            `json:"liquid"`
	Vesting   uint64            `json:"vesting"`
	Staked    uint64            `json:"staked"`
	Unbonding uint64            `json:"unbonding"`
	Escrowed  uint64            `json:"escrowed"`
	Pools     map[string]uint64 `json:"pools"`
	Burned    uint64            `json:"burned"`
}

// Sum adds every bucket; it equals Total when the books balance.
func (s SupplyView) Sum() (uint64, error) {
	return Supply{Liquid: s.Liquid, Staked: s.Staked, Unbonding: s.Unbonding + s.Vesting,
		Escrowed: s.Escrowed, Pools: s.Pools, Burned: s.Burned}.Total()
}

// AccountView is an account as queries report it.
type AccountView struct {
	Account
	Spendable uint64 `json:"spendable"`
	Locked    uint64 `json:"locked"`
	Bonded    uint64 `json:"bonded"`
}

// AccountKey is the store key of an account's record: what a proof of the account (an
// ABCI query of account/<addr> with prove set) is a proof of.
func AccountKey(a keys.Address) []byte { return acctKey(a) }

// DecodeAccount reads the record stored under AccountKey(a), such as a proven value; the
// key, not the record, names the account. An empty record is an account never written:
// a zero balance.
func DecodeAccount(a keys.Address, record []byte) (Account, error) {
	var acc Account
	if len(record) > 0 {
		if err := decodeRecord(record, &acc); err != nil {
			return Account{}, fmt.Errorf("%w: account %s: %v", ErrDecode, a, err)
		}
	}
	acc.Address = a
	return acc, nil
}

// DecodeJob reads a job's record, such as the query job_record/<id> answers with.
func DecodeJob(record []byte) (Job, error) {
	var j Job
	if err := decodeRecord(record, &j); err != nil {
		return Job{}, fmt.Errorf("%w: job record: %v", ErrDecode, err)
	}
	return j, nil
}

// Query answers read-only requests against the last committed state. Paths:
// account/<addr>, sequence/<addr> (the mempool's next sequence, see NextSequence), node/<addr>, nodes,
// nodes_since/<height> (NodesSince), validator/<addr>, validators, job/<id>, supply,
// params, proposal/<id>, proposals, unbonding/<addr>, chain_id, node_history/<addr>[/<before>[/<limit>]]
// (history.go), validator_rewards and attestation_audits (the open audits of validators'
// attestations, attestaudit.go). Every answer is JSON but those of job_record/<id> and
// account_record/<addr>: the record as the store holds it (DecodeJob and DecodeAccount
// read it; an account never written has none), for Go clients, which read a job several
// times and an account with every job submitted; making and reading the JSON of job/<id>
// and account/<addr> cost several times more.
func (a *App) Query(path string) ([]byte, error) {
	view, err := a.store.Committed()
	if err != nil {
		return nil, err
	}
	st := state{kv: readOnly{view}}
	// The block time, for the paths that count what vesting still locks.
	now := func() int64 { t, _, _ := getRecord[int64](view, keyBlockTime); return t }
	kind, arg := splitPath(path)
	var v any
	switch kind {
	case "job_record":
		b, err := view.Get(jobKey(arg))
		if err == nil && b == nil {
			err = fmt.Errorf("%w: job %s", ErrNotFound, arg)
		}
		return slices.Clone(b), err // the store's own bytes stay out of the caller's hands
	case "account_record":
		addr := keys.Address(arg)
		if err := addr.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
		}
		b, err := view.Get(acctKey(addr))
		return slices.Clone(b), err // empty: never written
	case "account":
		addr := keys.Address(arg)
		if err := addr.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
		}
		acc, err := st.account(addr)
		if err != nil {
			return nil, err
		}
		locked, err := st.lockedInBalance(acc, now())
		if err != nil {
			return nil, err
		}
		bonded, err := st.bonded(addr)
		if err != nil {
			return nil, err
		}
		v = AccountView{Account: acc, Spendable: acc.Balance - locked, Locked: locked, Bonded: bonded}
	case "sequence":
		addr := keys.Address(arg)
		if err := addr.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
		}
		if v, err = a.NextSequence(addr); err != nil {
			return nil, err
		}
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
		nodes := []Node{}
		if err := eachRecord(view, prefixNode, func(n Node) bool { nodes = append(nodes, n); return true }); err != nil {
			return nil, err
		}
		v = nodes
	case "nodes_since":
		since, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || since < 0 {
			return nil, fmt.Errorf("%w: nodes_since/%q: want a height", ErrInvalidMsg, arg)
		}
		if v, err = a.nodesSince(view, since); err != nil {
			return nil, err
		}
	case "validator":
		val, ok, err := st.validator(keys.Address(arg))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: validator %s", ErrNotFound, arg)
		}
		v = val
	case "validators":
		vals, err := st.validators()
		if err != nil {
			return nil, err
		}
		if vals == nil {
			vals = []Validator{}
		}
		v = vals
	case "job":
		j, err := st.job(arg)
		if err != nil {
			return nil, err
		}
		v = j
	case "supply":
		if v, err = supplyView(st, now()); err != nil {
			return nil, err
		}
	case "params":
		if v, err = st.params(); err != nil {
			return nil, err
		}
	case "proposal":
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: proposal id %q", ErrInvalidMsg, arg)
		}
		prop, ok, err := getRecord[Proposal](view, propKey(id))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: proposal %d", ErrNotFound, id)
		}
		v = prop
	case "proposals":
		props := []Proposal{}
		if err := eachRecord(view, prefixProp, func(p Proposal) bool { props = append(props, p); return true }); err != nil {
			return nil, err
		}
		v = props
	case "unbonding":
		list := []Unbonding{}
		if err := st.unbondings(keys.Address(arg), func(u Unbonding) bool { list = append(list, u); return true }); err != nil {
			return nil, err
		}
		v = list
	case "chain_id":
		v = a.chainID
	case "node_history":
		if v, err = queryNodeHistory(view, arg); err != nil {
			return nil, err
		}
	case "attestation_audits":
		if v, err = attestationAudits(view); err != nil {
			return nil, err
		}
	case "validator_rewards":
		height, _ := a.store.LastCommit()
		if v, err = queryRewardWindow(st, height, now()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown query path %q", ErrNotFound, path)
	}
	return json.Marshal(v)
}

// supplyView splits vesting-locked tokens out of the liquid bucket.
func supplyView(st state, now int64) (SupplyView, error) {
	sp, err := st.supply()
	if err != nil {
		return SupplyView{}, err
	}
	var vesting uint64
	var ierr error
	err = st.kv.Iterate(prefixVest, func(k, _ []byte) bool {
		acc, err := st.account(keys.Address(k[len(prefixVest):]))
		if err == nil {
			var locked uint64
			locked, err = st.lockedInBalance(acc, now)
			vesting += locked
		}
		ierr = err
		return err == nil
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return SupplyView{}, err
	}
	return SupplyView{
		Total: sp.Genesis, Liquid: sp.Liquid - vesting, Vesting: vesting, Staked: sp.Staked,
		Unbonding: sp.Unbonding, Escrowed: sp.Escrowed, Pools: sp.Pools, Burned: sp.Burned,
	}, nil
}

// NodesSince is the query nodes_since/<height>: the node records written after height
// (Nodes, by address), or every node when Full (the ledger does not know what changed that
// long ago: it started since). A reader keeps Height, the last committed height, and asks
// since it next time.
type NodesSince struct {
	Height int64  `json:"height"`
	Full   bool   `json:"full,omitempty"`
	Nodes  []Node `json:"nodes"`
}

func (a *App) nodesSince(view Reader, since int64) (NodesSince, error) {
	height, _ := a.store.LastCommit()
	out := NodesSince{Height: height, Nodes: []Node{}}
	if since <= a.nodesFrom || since > height {
		out.Full = true
		err := eachRecord(view, prefixNode, func(n Node) bool { out.Nodes = append(out.Nodes, n); return true })
		return out, err
	}
	var changed []keys.Address
	for addr, h := range a.nodesChanged {
		if h > since {
			changed = append(changed, addr)
		}
	}
	slices.Sort(changed)
	for _, addr := range changed {
		n, ok, err := getRecord[Node](view, nodeKey(addr))
		if err != nil {
			return NodesSince{}, err
		}
		if ok {
			out.Nodes = append(out.Nodes, n)
		}
	}
	return out, nil
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
