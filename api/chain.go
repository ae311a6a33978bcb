package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// The chain types below mirror the ledger's query results field for field (amounts in
// uomni), so a daemon can pass the ledger's JSON through; a test keeps them in step.

// Vesting locks Total uomni until CliffUnix, then releases it linearly until EndUnix.
type Vesting struct {
	Total     uint64 `json:"total"`
	CliffUnix int64  `json:"cliff_unix"`
	EndUnix   int64  `json:"end_unix"`
}

// ChainAccount is GET /v1/chain/accounts/{address}. Balance includes Locked (still
// vesting: it can be staked but not moved); Spendable is what can be sent; Bonded is what
// the account has staked or unbonding, which is not in Balance.
type ChainAccount struct {
	Address   string   `json:"address"`
	Balance   uint64   `json:"balance"`
	Spendable uint64   `json:"spendable"`
	Locked    uint64   `json:"locked"`
	Bonded    uint64   `json:"bonded"`
	Seq       uint64   `json:"seq"`
	Vesting   *Vesting `json:"vesting,omitempty"`
}

// RouterWeights are the placement score weights in basis points; they add up to 10000.
type RouterWeights struct {
	Compute     uint32 `json:"compute"`
	Latency     uint32 `json:"latency"`
	Reliability uint32 `json:"reliability"`
	Price       uint32 `json:"price"`
}

// Params is GET /v1/chain/params: every governable number. Rates are basis points
// (10000 = 100%), stakes and rewards uomni. A parameter-change proposal names fields by
// their JSON names.
type Params struct {
	BurnBP              uint64        `json:"burn_bp"`
	FeeBP               uint64        `json:"fee_bp"`
	MinNodeStake        uint64        `json:"min_node_stake"`
	MinValidatorStake   uint64        `json:"min_validator_stake"`
	MinBilledMillis     uint64        `json:"min_billed_millis"`
	UnbondingSeconds    uint64        `json:"unbonding_seconds"`
	ValidatorFeeShareBP uint64        `json:"validator_fee_share_bp"`
	BuybackFeeShareBP   uint64        `json:"buyback_fee_share_bp"`
	QuarterBlocks       uint64        `json:"quarter_blocks"`
	BuybackBurn         bool          `json:"buyback_burn"`
	RewardPerGPUHour    uint64        `json:"reward_per_gpu_hour"`
	RewardDecayBP       uint64        `json:"reward_decay_bp"`
	RewardDecayBlocks   uint64        `json:"reward_decay_blocks"`
	FraudSlashBP        uint64        `json:"fraud_slash_bp"`
	VerifierRewardBP    uint64        `json:"verifier_reward_bp"`
	FalseAttestSlashBP  uint64        `json:"false_attest_slash_bp"`
	DoubleSignSlashBP   uint64        `json:"double_sign_slash_bp"`
	GovQuorumBP         uint64        `json:"gov_quorum_bp"`
	GovThresholdBP      uint64        `json:"gov_threshold_bp"`
	GovVotingBlocks     uint64        `json:"gov_voting_blocks"`
	RouterWeights       RouterWeights `json:"router_weights"`
	AuditRateBP         uint64        `json:"audit_rate_bp"`
	CommitteeSize       uint64        `json:"committee_size"`
	Routers             []string      `json:"routers"`
	ValidatorAuditBP    uint64        `json:"validator_audit_bp"`
}

// Validator is one entry of GET /v1/chain/validators. Power is its CometBFT voting power:
// whole OMNI staked, 0 while jailed.
type Validator struct {
	Address string `json:"address"`
	PubKey  []byte `json:"pub_key"`
	Stake   uint64 `json:"stake"`
	Power   int64  `json:"power"`
	Jailed  bool   `json:"jailed"`
}

// Spend is a treasury spend proposed to governance.
type Spend struct {
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

// Proposal is GET /v1/chain/proposals/{id}: a governance proposal (parameter changes or a
// treasury spend) and its stake-weighted tally in uomni.
type Proposal struct {
	ID            uint64                     `json:"id"`
	Proposer      string                     `json:"proposer"`
	Title         string                     `json:"title"`
	Description   string                     `json:"description,omitempty"`
	Params        map[string]json.RawMessage `json:"params,omitempty"`
	Spend         *Spend                     `json:"spend,omitempty"`
	SubmitHeight  int64                      `json:"submit_height"`
	VotingEnd     int64                      `json:"voting_end_height"`
	Status        string                     `json:"status"` // voting, passed, rejected, failed
	Yes           uint64                     `json:"yes"`
	No            uint64                     `json:"no"`
	Abstain       uint64                     `json:"abstain"`
	AppliedHeight int64                      `json:"applied_height,omitempty"`
	Result        string                     `json:"result,omitempty"`
}

// Unbonding is stake on its way back to a balance (GET /v1/chain/unbonding/{address});
// it returns at MatureUnix (block time) and can be slashed until then.
type Unbonding struct {
	ID         uint64 `json:"id"`
	Address    string `json:"address"`
	Role       string `json:"role"`
	Amount     uint64 `json:"amount"`
	MatureUnix int64  `json:"mature_unix"`
}

// BroadcastTxRequest is POST /v1/chain/txs: a transaction signed by its sender.
type BroadcastTxRequest struct {
	Tx []byte `json:"tx"`
}

// BroadcastTxResponse reports a committed transaction: its hash and the height of the
// block that committed it.
type BroadcastTxResponse struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
}

// ChainAccount is GET /v1/chain/accounts/{address}.
func (c *Client) ChainAccount(ctx context.Context, address string) (ChainAccount, error) {
	var a ChainAccount
	err := c.call(ctx, http.MethodGet, "/v1/chain/accounts/"+url.PathEscape(address), nil, &a)
	return a, err
}

// Params is GET /v1/chain/params.
func (c *Client) Params(ctx context.Context) (Params, error) {
	var p Params
	err := c.call(ctx, http.MethodGet, "/v1/chain/params", nil, &p)
	return p, err
}

// Validators is GET /v1/chain/validators.
func (c *Client) Validators(ctx context.Context) ([]Validator, error) {
	var v []Validator
	err := c.call(ctx, http.MethodGet, "/v1/chain/validators", nil, &v)
	return v, err
}

// Proposals is GET /v1/chain/proposals.
func (c *Client) Proposals(ctx context.Context) ([]Proposal, error) {
	var p []Proposal
	err := c.call(ctx, http.MethodGet, "/v1/chain/proposals", nil, &p)
	return p, err
}

// Proposal is GET /v1/chain/proposals/{id}.
func (c *Client) Proposal(ctx context.Context, id uint64) (Proposal, error) {
	var p Proposal
	err := c.call(ctx, http.MethodGet, "/v1/chain/proposals/"+strconv.FormatUint(id, 10), nil, &p)
	return p, err
}

// Unbonding is GET /v1/chain/unbonding/{address}.
func (c *Client) Unbonding(ctx context.Context, address string) ([]Unbonding, error) {
	var u []Unbonding
	err := c.call(ctx, http.MethodGet, "/v1/chain/unbonding/"+url.PathEscape(address), nil, &u)
	return u, err
}

// BroadcastTx is POST /v1/chain/txs; it returns once the transaction has committed. A
// rejected transaction's error wraps ErrInsufficientFunds, ErrConflict (wrong sequence or
// duplicate), ErrForbidden (a signer not allowed to do this), or is a *FieldError for field
// "tx" carrying the ledger's reason.
func (c *Client) BroadcastTx(ctx context.Context, tx []byte) (BroadcastTxResponse, error) {
	var r BroadcastTxResponse
	err := c.call(ctx, http.MethodPost, "/v1/chain/txs", BroadcastTxRequest{Tx: tx}, &r)
	return r, err
}

// Block is one entry of GET /v1/chain/blocks: a committed block and its transactions.
type Block struct {
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Hash     string    `json:"hash"`
	Proposer string    `json:"proposer"` // the proposing validator's consensus address
	Txs      []BlockTx `json:"txs"`
}

// BlockTx is a transaction in a block: its hash, message kind (create_job, transfer, …),
// signer, and the ledger's result code (0: applied).
type BlockTx struct {
	Hash   string `json:"hash"`
	Kind   string `json:"kind"`
	Signer string `json:"signer,omitempty"`
	Code   uint32 `json:"code"`
}

// Blocks reads the chain's latest blocks, newest first (GET /v1/chain/blocks).
func (c *Client) Blocks(ctx context.Context, limit int) ([]Block, error) {
	var out []Block
	return out, c.call(ctx, http.MethodGet, "/v1/chain/blocks?limit="+strconv.Itoa(limit), nil, &out)
}
