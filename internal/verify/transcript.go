package verify

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// A check's transcript is what an attestation shows of the work behind it, so that an
// audit of validators can tell a validator that checked from one that attested without
// checking. It is the digest of the expected side of the check's first round: A·(B·r)
// mod p for an int8 product, the float64 A·(B·r) of the fp32 check, and each layer's
// H·(Wᵀ·r) + b·r mod p for an MLP trace, with r drawn from the job's seed. Only the
// inputs and that round give it; the seed comes from a block after the node committed its
// result. Verdict.Transcript carries it on a passing verdict.
//
// No attestation carries it as it is: AttestTranscript binds it to the attesting
// validator's address by a hash, so one validator's attestation reveals nothing another
// could copy, and an auditor who ran the check once recomputes every attester's.
//
// What it does not prove: when the result is right, A·(B·r) = C·r, so a validator that
// computes C·r from the result alone (cheaper: it never reads A or B) has the right
// transcript. It is caught only when the result is wrong and the job's attestations are
// audited: its C·r is then not A·(B·r).
const transcriptDomain = "omnisync/verify/transcript/v1"

// transcript accumulates the values of a check's first round in a sha256 hash.
type transcript struct {
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	buf [8]byte
}

func newTranscript(kernel string) *transcript {
	t := &transcript{h: sha256.New()}
	t.h.Write([]byte(transcriptDomain))
	t.write(uint64(len(kernel)))
	t.h.Write([]byte(kernel))
	return t
}

func (t *transcript) write(v uint64) {
	binary.LittleEndian.PutUint64(t.buf[:], v)
	t.h.Write(t.buf[:])
}

// float writes a float64's IEEE 754 bits, little-endian (binary.Write does the
// conversion: this package keeps to the standard library's pure parts, math not among them).
func (t *transcript) float(v float64) {
	_ = binary.Write(t.h, binary.LittleEndian, v)
}

// values writes a vector, length first, so that a layer's values cannot run into the
// next layer's.
func (t *transcript) values(v []uint64) {
	t.write(uint64(len(v)))
	for _, x := range v {
		t.write(x)
	}
}

func (t *transcript) sum() string { return "sha256:" + hex.EncodeToString(t.h.Sum(nil)) }

// AttestTranscript is the transcript validator states in its attestation of a check whose
// Verdict.Transcript is check: sha256 over a domain tag and both, each length-prefixed,
// as "sha256:<64 hex digits>". Validators and auditors compute it alike; the ledger only
// requires that a passing attestation carries one.
func AttestTranscript(check, validator string) string {
	t := &transcript{h: sha256.New()}
	t.h.Write([]byte(transcriptDomain + "/attest"))
	for _, f := range []string{check, validator} {
		t.write(uint64(len(f)))
		t.h.Write([]byte(f))
	}
	return t.sum()
}
