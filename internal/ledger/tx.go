package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/omnisync/omnisync/internal/keys"
)

// Wire format of a transaction (version 1):
//
//	[0]      version (1)
//	[1:33]   signer's ed25519 public key
//	[33:97]  signature over signDomain || body
//	[97:]    body: JSON-encoded Body
//
// The signature covers the body bytes exactly as sent, so no canonical re-encoding is
// needed; the chain id and sequence inside the body stop cross-chain and replayed use.
const (
	txVersion  = 1
	txHeader   = 1 + ed25519.PublicKeySize + ed25519.SignatureSize
	MaxTxBytes = 64 << 10
)

var signDomain = []byte("omnisync/tx/v1\x00")

// Body is what a signer authorises. Exactly one message field is set.
type Body struct {
	ChainID string `json:"chain_id"`
	Seq     uint64 `json:"seq"`
	Msg
}

// Msg is the union of transaction messages; exactly one field is non-nil.
type Msg struct {
	Transfer     *MsgTransfer     `json:"transfer,omitempty"`
	RegisterNode *MsgRegisterNode `json:"register_node,omitempty"`
	CreateJob    *MsgCreateJob    `json:"create_job,omitempty"`
	AssignJob    *MsgAssignJob    `json:"assign_job,omitempty"`
	CommitResult *MsgCommitResult `json:"commit_result,omitempty"`
	RevealResult *MsgRevealResult `json:"reveal_result,omitempty"`
	// RevealChallenge opens a challenge job's commitment (the router, after the result).
	RevealChallenge *MsgRevealChallenge `json:"reveal_challenge,omitempty"`
	Attest          *MsgAttest          `json:"attest,omitempty"`
	CancelJob       *MsgCancelJob       `json:"cancel_job,omitempty"`
	Stake           *MsgStake           `json:"stake,omitempty"`
	Unstake         *MsgUnstake         `json:"unstake,omitempty"`
	Propose         *MsgPropose         `json:"propose,omitempty"`
	Vote            *MsgVote            `json:"vote,omitempty"`
	// Batches (batch.go): one party acting on many jobs in one tx.
	AssignJobs    *MsgAssignJobs    `json:"assign_jobs,omitempty"`
	AttestJobs    *MsgAttestJobs    `json:"attest_jobs,omitempty"`
	CommitResults *MsgCommitResults `json:"commit_results,omitempty"`
	// CapacityReport is a validator's report of a proof-of-capacity challenge (capacity.go).
	CapacityReport *MsgCapacityReport `json:"capacity_report,omitempty"`
	// ReportAttestation is a validator's report that an audited attestation is false
	// (attestaudit.go).
	ReportAttestation *MsgReportAttestation `json:"report_attestation,omitempty"`
}

// Kind names the message set in m, or "" when none or several are.
func (m Msg) Kind() string {
	kind, n := "", 0
	for _, c := range []struct {
		set  bool
		name string
	}{
		{m.Transfer != nil, "transfer"}, {m.RegisterNode != nil, "register_node"},
		{m.CreateJob != nil, "create_job"}, {m.AssignJob != nil, "assign_job"},
		{m.CommitResult != nil, "commit_result"}, {m.RevealResult != nil, "reveal_result"},
		{m.Attest != nil, "attest"}, {m.CancelJob != nil, "cancel_job"}, {m.Stake != nil, "stake"},
		{m.Unstake != nil, "unstake"}, {m.Propose != nil, "propose"}, {m.Vote != nil, "vote"},
		{m.AssignJobs != nil, "assign_jobs"}, {m.AttestJobs != nil, "attest_jobs"},
		{m.CommitResults != nil, "commit_results"}, {m.RevealChallenge != nil, "reveal_challenge"},
		{m.CapacityReport != nil, "capacity_report"}, {m.ReportAttestation != nil, "report_attestation"},
	} {
		if c.set {
			kind, n = c.name, n+1
		}
	}
	if n != 1 {
		return ""
	}
	return kind
}

// Tx is a decoded transaction whose signature has been checked.
type Tx struct {
	Signer keys.Address
	Body   Body
	Hash   [32]byte
}

// HashTx is the transaction hash CometBFT reports (sha256 of the raw bytes).
func HashTx(raw []byte) [32]byte { return sha256.Sum256(raw) }

// HashHex is the upper-case hex form block explorers show.
func HashHex(raw []byte) string {
	h := HashTx(raw)
	return fmt.Sprintf("%X", h[:])
}

// SignTx builds and signs a transaction.
func SignTx(priv ed25519.PrivateKey, chainID string, seq uint64, msg Msg) ([]byte, error) {
	if msg.Kind() == "" {
		return nil, fmt.Errorf("%w: exactly one message must be set", ErrInvalidMsg)
	}
	body, err := json.Marshal(Body{ChainID: chainID, Seq: seq, Msg: msg})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidMsg, err)
	}
	raw := make([]byte, 0, txHeader+len(body))
	raw = append(raw, txVersion)
	raw = append(raw, priv.Public().(ed25519.PublicKey)...)
	raw = append(raw, ed25519.Sign(priv, append(append([]byte{}, signDomain...), body...))...)
	raw = append(raw, body...)
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("%w: transaction is %d bytes, limit %d", ErrInvalidMsg, len(raw), MaxTxBytes)
	}
	return raw, nil
}

// DecodeTx parses a transaction and verifies its signature. It does not check the chain id
// or sequence: those depend on state.
func DecodeTx(raw []byte) (Tx, error) {
	pub, body, err := verifySignature(raw)
	if err != nil {
		return Tx{}, err
	}
	var b Body
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return Tx{}, fmt.Errorf("%w: body: %v", ErrDecode, err)
	}
	if dec.More() {
		return Tx{}, fmt.Errorf("%w: trailing data after body", ErrDecode)
	}
	if b.Kind() == "" {
		return Tx{}, fmt.Errorf("%w: exactly one message must be set", ErrInvalidMsg)
	}
	return Tx{Signer: keys.AddressOf(append(ed25519.PublicKey{}, pub...)), Body: b, Hash: HashTx(raw)}, nil
}

// verifySignature checks a transaction's framing and that its signature is its signer's
// over signDomain || body, and returns the signer's key and the body.
func verifySignature(raw []byte) (ed25519.PublicKey, []byte, error) {
	if len(raw) > MaxTxBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrDecode, len(raw), MaxTxBytes)
	}
	if len(raw) <= txHeader {
		return nil, nil, fmt.Errorf("%w: %d bytes is shorter than the header", ErrDecode, len(raw))
	}
	if raw[0] != txVersion {
		return nil, nil, fmt.Errorf("%w: unknown version %d", ErrDecode, raw[0])
	}
	pub := ed25519.PublicKey(raw[1 : 1+ed25519.PublicKeySize])
	sig := raw[1+ed25519.PublicKeySize : txHeader]
	body := raw[txHeader:]
	if !verifyEd25519(pub, append(append(make([]byte, 0, len(signDomain)+len(body)), signDomain...), body...), sig) {
		return nil, nil, fmt.Errorf("%w: signature does not match signer %s", ErrBadSignature, keys.AddressOf(pub))
	}
	return pub, body, nil
}

// stdlibRules makes curve25519-voi judge a signature by crypto/ed25519's rules: S must be
// below the group order, R must equal the canonical encoding of [S]B - [k]A (cofactorless),
// and small-order or non-canonically encoded public keys are allowed.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifyEd25519 reports whether sig is pub's signature over msg, with exactly the verdict of
// crypto/ed25519.Verify. It uses curve25519-voi, the library CometBFT verifies votes with,
// because it takes about 30% less time than the standard library and every transaction is
// verified more than once (the router, then CheckTx). Replaying history must reach the same
// verdict on every signature, adversarial ones included: VerifyOptionsStdLib is voi's model of
// the standard library's rules, and TestVerifyMatchesStdlib (honest, mutated, small-order,
// mixed-order, non-canonical and "Taming the many EdDSAs" signatures) and
// FuzzVerifyMatchesStdlib hold the two to the same answer. pub must be
// ed25519.PublicKeySize bytes; the conversion to voi's key type copies nothing.
func verifyEd25519(pub ed25519.PublicKey, msg, sig []byte) bool {
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, stdlibRules)
}

// JobID derives a job's id from its creator and the sequence of the creating transaction,
// so a consumer knows the id before the chain does.
func JobID(consumer keys.Address, seq uint64) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("job/%s/%d", consumer, seq)))
	return "job-" + hex.EncodeToString(h[:8])
}
