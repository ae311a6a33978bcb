package ledger

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/internal/keys"
)

// A node's history and the validators' realised yield are read-only views that no rule
// depends on. Both are derived, once a block has run, from the events it emitted (see
// recordHistory), so the code that settles and slashes stays unaware of them.

// Node history entry kinds.
const (
	HistorySettled = "settled" // a job verified and paid
	HistoryFailed  = "failed"  // a redundant job's replica outvoted, or its reveal withheld
	HistorySlashed = "slashed" // a result proven wrong: the job failed and stake was slashed
)

// NodeHistoryEntry is one outcome in a node's record: a settled job with what the node
// earned, a replica that lost the vote, or a slash with its amount and reason.
type NodeHistoryEntry struct {
	Height int64  `json:"height"`
	Time   int64  `json:"time_unix"`
	Kind   string `json:"kind"`
	JobID  string `json:"job_id,omitempty"`
	Paid   uint64 `json:"paid,omitempty"`   // from the job's escrow
	Reward uint64 `json:"reward,omitempty"` // from the network-rewards pool
	Amount uint64 `json:"amount,omitempty"` // slashed stake
	Reason string `json:"reason,omitempty"`
}

// NodeRecord sums a node's whole history; it never shrinks, unlike the page of entries.
type NodeRecord struct {
	Settled  uint64 `json:"settled"`
	Failed   uint64 `json:"failed"` // failures, slashes included
	Slashes  uint64 `json:"slashes"`
	Earned   uint64 `json:"earned"` // paid plus rewards
	Slashed  uint64 `json:"slashed"`
	LastUnix int64  `json:"last_unix,omitempty"`
}

// NodeHistory is the query node_history/<addr>[/<before>[/<limit>]]: the node's totals
// and its newest entries below height before (0: the newest), at most limit of them.
// NextBefore, when set, is the before that reads the next page.
type NodeHistory struct {
	Node       keys.Address       `json:"node"`
	Record     NodeRecord         `json:"record"`
	Entries    []NodeHistoryEntry `json:"entries"`
	NextBefore int64              `json:"next_before,omitempty"`
}

// Bounds on one page of history.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
)

var (
	prefixNodeHist = []byte("nodehist/")
	prefixNodeRec  = []byte("noderec/")
	keyRewardWin   = []byte("meta/validator_reward_window")
)

// nodeHistKey sorts a node's entries newest first: the height and the entry's place in
// the block's events, both inverted.
func nodeHistKey(a keys.Address, height int64, ordinal uint64) []byte {
	k := joinKey(prefixNodeHist, string(a))
	k = append(k, '/')
	k = appendHex16(k, ^uint64(height))
	k = append(k, '/')
	return appendHex16(k, ^ordinal)
}

func nodeHistPrefix(a keys.Address) []byte {
	return append(joinKey(prefixNodeHist, string(a)), '/')
}

func nodeRecKey(a keys.Address) []byte { return joinKey(prefixNodeRec, string(a)) }

// RewardWindow is the query validator_rewards: what the validator reward pool paid out
// over about the last RewardWindowBlocks blocks (whole buckets of RewardBucketBlocks),
// from FromHeight at FromUnix to ToHeight at ToUnix, against the stake now bonded by
// active validators. A reader annualises Paid/Bonded over ToUnix-FromUnix seconds.
type RewardWindow struct {
	FromHeight int64  `json:"from_height"`
	FromUnix   int64  `json:"from_unix"`
	ToHeight   int64  `json:"to_height"`
	ToUnix     int64  `json:"to_unix"`
	Paid       uint64 `json:"paid"`
	Bonded     uint64 `json:"bonded"`
}

// The reward window keeps RewardWindowBlocks/RewardBucketBlocks buckets, one small record
// rewritten once a block.
const (
	RewardBucketBlocks = 100
	RewardWindowBlocks = 1000
)

type rewardBucket struct {
	Start     int64  `json:"start"`
	StartUnix int64  `json:"start_unix"`
	Paid      uint64 `json:"paid"`
}

type rewardWindow struct {
	Buckets []rewardBucket `json:"buckets"`
}

// recordHistory indexes a finalised block's outcomes: per-node entries and totals from
// its settlement, replica and slash events, and the validator rewards it paid.
func recordHistory(st state, blk *blockCtx, res *BlockResult) error {
	var ordinal uint64
	var paid uint64
	visit := func(events []Event) error {
		for i, e := range events {
			if e.Type == EventBatchItem {
				continue // so a batch's entries are numbered as its items' single txs would be
			}
			ordinal++
			if e.Type == "validator_rewards" {
				amt, err := attrUint(e, "amount")
				if err != nil {
					return err
				}
				if paid, err = add(paid, amt); err != nil {
					return err
				}
				continue
			}
			node, entry, ok, err := historyEntry(events, i)
			if err != nil {
				return err
			}
			if ok {
				entry.Height, entry.Time = blk.height, blk.now
				if err := addNodeHistory(st, node, ordinal, entry); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, tx := range res.TxResults {
		if err := visit(tx.Events); err != nil {
			return err
		}
	}
	if err := visit(res.Events); err != nil {
		return err
	}
	return recordRewards(st, blk, paid)
}

// historyEntry reads events[i] as an entry in a node's history, if it is one.
func historyEntry(events []Event, i int) (keys.Address, NodeHistoryEntry, bool, error) {
	e := events[i]
	var entry NodeHistoryEntry
	var err error
	switch e.Type {
	case "job_settled":
		// A redundant job's settlement names every paid node; its settlement_share events
		// say what each got, so only a job paid to one node is read here.
		if hasShares(events, attr(e, "job_id")) {
			return "", entry, false, nil
		}
		fallthrough
	case "settlement_share":
		entry.Kind, entry.JobID = HistorySettled, attr(e, "job_id")
		if entry.Paid, err = attrUint(e, "paid"); err == nil {
			entry.Reward, err = attrUint(e, "reward")
		}
		return keys.Address(attr(e, "node")), entry, err == nil, err
	case "replica_outvoted", "replica_withheld":
		entry.Kind, entry.JobID = HistoryFailed, attr(e, "job_id")
		entry.Reason = "result outvoted by the replicas that agreed"
		if e.Type == "replica_withheld" {
			entry.Reason = "result sealed but never revealed"
		}
		return keys.Address(attr(e, "node")), entry, true, nil
	case "slashed":
		if attr(e, "role") != RoleNode {
			return "", entry, false, nil
		}
		entry.Kind, entry.Reason = HistorySlashed, attr(e, "reason")
		if id, ok := strings.CutPrefix(entry.Reason, "wrong result for "); ok {
			entry.JobID = id // a capacity proof's slash names no job
		}
		entry.Amount, err = attrUint(e, "amount")
		return keys.Address(attr(e, "account")), entry, err == nil, err
	}
	return "", entry, false, nil
}

func hasShares(events []Event, jobID string) bool {
	for _, e := range events {
		if e.Type == "settlement_share" && attr(e, "job_id") == jobID {
			return true
		}
	}
	return false
}

func attr(e Event, key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

func attrUint(e Event, key string) (uint64, error) {
	v, err := strconv.ParseUint(attr(e, key), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("event %s: attribute %s: %w", e.Type, key, err)
	}
	return v, nil
}

func addNodeHistory(st state, node keys.Address, ordinal uint64, entry NodeHistoryEntry) error {
	rec, _, err := getRecord[NodeRecord](st.kv, nodeRecKey(node))
	if err != nil {
		return err
	}
	switch entry.Kind {
	case HistorySettled:
		rec.Settled++
		if rec.Earned, err = add(rec.Earned, entry.Paid); err == nil {
			rec.Earned, err = add(rec.Earned, entry.Reward)
		}
	case HistoryFailed:
		rec.Failed++
	case HistorySlashed:
		rec.Failed++
		rec.Slashes++
		rec.Slashed, err = add(rec.Slashed, entry.Amount)
	}
	if err != nil {
		return err
	}
	rec.LastUnix = entry.Time
	if err := st.put(nodeRecKey(node), rec); err != nil {
		return err
	}
	return st.put(nodeHistKey(node, entry.Height, ordinal), entry)
}

// recordRewards adds the block's validator payout to the reward window, opening a new
// bucket every RewardBucketBlocks blocks and dropping those that fell out of the window.
func recordRewards(st state, blk *blockCtx, paid uint64) error {
	w, _, err := getRecord[rewardWindow](st.kv, keyRewardWin)
	if err != nil {
		return err
	}
	start := blk.height - blk.height%RewardBucketBlocks
	if n := len(w.Buckets); n == 0 || w.Buckets[n-1].Start != start {
		w.Buckets = append(w.Buckets, rewardBucket{Start: start, StartUnix: blk.now})
		if keep := RewardWindowBlocks / RewardBucketBlocks; len(w.Buckets) > keep {
			w.Buckets = append(w.Buckets[:0], w.Buckets[len(w.Buckets)-keep:]...)
		}
	}
	last := &w.Buckets[len(w.Buckets)-1]
	if last.Paid, err = add(last.Paid, paid); err != nil {
		return err
	}
	return st.put(keyRewardWin, w)
}

// queryNodeHistory answers node_history/<addr>[/<before>[/<limit>]].
func queryNodeHistory(r Reader, arg string) (NodeHistory, error) {
	parts := strings.Split(arg, "/")
	if len(parts) > 3 {
		return NodeHistory{}, fmt.Errorf("%w: node_history/<addr>[/<before>[/<limit>]]: %q", ErrInvalidMsg, arg)
	}
	node := keys.Address(parts[0])
	if err := node.Validate(); err != nil {
		return NodeHistory{}, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
	}
	var before int64
	limit := DefaultHistoryLimit
	if len(parts) > 1 && parts[1] != "" {
		b, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || b < 0 {
			return NodeHistory{}, fmt.Errorf("%w: before %q: want a height", ErrInvalidMsg, parts[1])
		}
		before = b
	}
	if len(parts) > 2 {
		l, err := strconv.Atoi(parts[2])
		if err != nil || l < 1 || l > MaxHistoryLimit {
			return NodeHistory{}, fmt.Errorf("%w: limit %q: want 1 to %d", ErrInvalidMsg, parts[2], MaxHistoryLimit)
		}
		limit = l
	}
	rec, _, err := getRecord[NodeRecord](r, nodeRecKey(node))
	if err != nil {
		return NodeHistory{}, err
	}
	out := NodeHistory{Node: node, Record: rec, Entries: []NodeHistoryEntry{}}
	err = eachRecord(r, nodeHistPrefix(node), func(e NodeHistoryEntry) bool {
		if before > 0 && e.Height >= before {
			return true
		}
		if len(out.Entries) == limit {
			// More follow: end the page between heights where it can, so that the next
			// one, below NextBefore, holds the rest of a height whole.
			if e.Height == out.Entries[limit-1].Height {
				out.Entries = out.Entries[:limit-trailingAt(out.Entries)]
			}
			out.NextBefore = out.Entries[len(out.Entries)-1].Height
			return false
		}
		out.Entries = append(out.Entries, e)
		return true
	})
	return out, err
}

// trailingAt counts the entries at the last entry's height, or 0 when the page holds
// nothing else (a node with more than a page of entries at one height loses the rest).
func trailingAt(entries []NodeHistoryEntry) int {
	last := entries[len(entries)-1].Height
	n := 0
	for i := len(entries) - 1; i >= 0 && entries[i].Height == last; i-- {
		n++
	}
	if n == len(entries) {
		return 0
	}
	return n
}

// queryRewardWindow answers validator_rewards.
func queryRewardWindow(st state, height, now int64) (RewardWindow, error) {
	w, _, err := getRecord[rewardWindow](st.kv, keyRewardWin)
	if err != nil {
		return RewardWindow{}, err
	}
	out := RewardWindow{ToHeight: height, ToUnix: now}
	if len(w.Buckets) > 0 {
		out.FromHeight, out.FromUnix = max(w.Buckets[0].Start, 1), w.Buckets[0].StartUnix
	}
	for _, b := range w.Buckets {
		if out.Paid, err = add(out.Paid, b.Paid); err != nil {
			return RewardWindow{}, err
		}
	}
	vals, err := st.validators()
	if err != nil {
		return RewardWindow{}, err
	}
	for _, v := range vals {
		if v.Power() > 0 {
			if out.Bonded, err = add(out.Bonded, v.Stake); err != nil {
				return RewardWindow{}, err
			}
		}
	}
	return out, nil
}
