package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/omnisync/omnisync/internal/keys"
)

// The records every transaction reads and writes (accounts, nodes, validators, jobs) are
// stored in a compact binary form: JSON encoding and decoding was most of a transfer's
// cost outside the Merkle tree. The rest (params, supply, proposals, unbondings) stays
// JSON. A binary record starts with binaryMarker, which no JSON document does, then a
// kind byte, then its fields in a fixed order: unsigned integers as minimal uvarints,
// signed ones as minimal zig-zag varints, strings and byte slices length-prefixed,
// booleans as 0 or 1. Decoders accept exactly what the encoders write (every value has one
// encoding; FuzzDecodeRecords checks it) and still read records stored as JSON. Fields
// added to a record later follow its old ones as a tail written only when not empty (see
// Job.appendRedundant), or follow a flag byte whose spare bit says they are there (see
// flagPair), so records already stored keep their bytes and their hash.
const binaryMarker = 0x00

const (
	kindAccount   = 'A'
	kindNode      = 'N'
	kindValidator = 'V'
	kindJob       = 'J'
)

var errRecord = errors.New("malformed binary record")

// binaryEncoder is a record with a binary form; binaryDecoder reads it back.
type binaryEncoder interface{ appendBinary([]byte) []byte }
type binaryDecoder interface{ decodeBinary([]byte) error }

// encodeRecord is a record's stored form.
func encodeRecord(v any) ([]byte, error) {
	if e, ok := v.(binaryEncoder); ok {
		// An account, node or validator fits in 96 bytes; a job (Job or *Job) says.
		size := 96
		if s, ok := v.(interface{ binarySize() int }); ok {
			size = s.binarySize()
		}
		return e.appendBinary(make([]byte, 0, size)), nil
	}
	return json.Marshal(v)
}

// decodeRecord reads a stored record of either form into v.
func decodeRecord[T any](b []byte, v *T) error {
	if len(b) > 0 && b[0] == binaryMarker {
		d, ok := any(v).(binaryDecoder)
		if !ok {
			return fmt.Errorf("%w: a %T is stored as JSON", errRecord, *v)
		}
		return d.decodeBinary(b)
	}
	return json.Unmarshal(b, v)
}

type encoder []byte

func header(b []byte, kind byte) encoder { return append(b, binaryMarker, kind) }

func (e encoder) u64(v uint64) encoder        { return binary.AppendUvarint(e, v) }
func (e encoder) i64(v int64) encoder         { return binary.AppendVarint(e, v) }
func (e encoder) str(s string) encoder        { return append(e.u64(uint64(len(s))), s...) }
func (e encoder) bytes(p []byte) encoder      { return append(e.u64(uint64(len(p))), p...) }
func (e encoder) addr(a keys.Address) encoder { return e.str(string(a)) }
func (e encoder) flag(v bool) encoder {
	if v {
		return append(e, 1)
	}
	return append(e, 0)
}

// flagPair writes two booleans in one byte: v as a flag writes it (0 or 1), and more as
// the bit above. A field added after a flag byte was first stored says it is there with
// more, so a record without it keeps the byte it always had.
func (e encoder) flagPair(v, more bool) encoder {
	e = e.flag(v)
	if more {
		e[len(e)-1] |= 2
	}
	return e
}

// flags writes booleans as the bits of one byte, the first as bit 0, as flag and flagPair
// write their one or two: a field added later takes the next bit, so a record without it
// keeps the byte it always had.
func (e encoder) flags(v ...bool) encoder {
	var b byte
	for i, x := range v {
		if x {
			b |= 1 << i
		}
	}
	return append(e, b)
}

// decoder reads fields in order; the first error sticks and later reads return zeros.
type decoder struct {
	b    []byte // what is left to read
	all  []byte // the whole record
	text string // the whole record as a string, once a field needs it
	err  error
}

// newDecoder returns the decoder by value, so it lives on its caller's stack.
func newDecoder(b []byte, kind byte) decoder {
	d := decoder{b: b, all: b}
	if len(b) < 2 || b[0] != binaryMarker || b[1] != kind {
		d.fail("record kind")
		return d
	}
	d.b = b[2:]
	return d
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errRecord, what)
	}
	d.b = nil
}

// uvarint reads a minimal uvarint: a longer encoding of the same value ends in a zero
// byte, which is refused.
func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || (n > 1 && d.b[n-1] == 0) {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 { return d.uvarint() }

func (d *decoder) u32() uint32 {
	v := d.uvarint()
	if v > 1<<32-1 {
		d.fail("uint32 range")
		return 0
	}
	return uint32(v)
}

func (d *decoder) i64() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // zig-zag, as binary.AppendVarint writes it
}

func (d *decoder) i32() int32 {
	v := d.i64()
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("int32 range")
		return 0
	}
	return int32(v)
}

func (d *decoder) raw() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// str reads a string. Every string of a record shares one copy of the record's bytes,
// made on the first: a job has a dozen, and one allocation instead of a dozen is a large
// part of reading it.
func (d *decoder) str() string {
	p := d.raw()
	if len(p) == 0 {
		return ""
	}
	if d.text == "" {
		d.text = string(d.all)
	}
	end := len(d.all) - len(d.b)
	return d.text[end-len(p) : end]
}

func (d *decoder) addr() keys.Address { return keys.Address(d.str()) }
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/min) { // each element takes at least min bytes
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	p := d.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) flag() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail("bool")
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

// flagPair reads what encoder.flagPair writes.
func (d *decoder) flagPair() (v, more bool) {
	if len(d.b) == 0 || d.b[0] > 3 {
		d.fail("flags")
		return false, false
	}
	v, more = d.b[0]&1 == 1, d.b[0]&2 == 2
	d.b = d.b[1:]
	return v, more
}

// flags reads a byte of n flags that encoder.flags wrote; a bit at n or above is refused.
func (d *decoder) flags(n int) byte {
	if len(d.b) == 0 || d.b[0]>>n != 0 {
		d.fail("flags")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// nonzero reads a uint64 that a flag said is there, so it cannot be 0: a 0 would be
// written by leaving the flag unset.
func (d *decoder) nonzero() uint64 {
	v := d.u64()
	if v == 0 {
		d.fail("zero after a flag")
	}
	return v
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// Account: the address is the key, so it is not stored again.
func (a Account) appendBinary(b []byte) []byte {
	e := header(b, kindAccount).u64(a.Balance).u64(a.Seq).flag(a.Vesting != nil)
	if v := a.Vesting; v != nil {
		e = e.u64(v.Total).i64(v.CliffUnix).i64(v.EndUnix)
	}
	return e
}

func (a *Account) decodeBinary(b []byte) error {
	d := newDecoder(b, kindAccount)
	*a = Account{Balance: d.u64(), Seq: d.u64()}
	if d.flag() {
		a.Vesting = &Vesting{Total: d.u64(), CliffUnix: d.i64(), EndUnix: d.i64()}
	}
	return d.done()
}

func (n Node) appendBinary(b []byte) []byte {
	h := n.Hardware
	return header(b, kindNode).addr(n.Address).u64(n.Stake).u64(n.PricePerHour).
		str(h.GPUModel).u64(uint64(h.GPUs)).u64(h.VRAMMiB).u64(h.TFLOPSMilli).str(h.Region).
		i64(int64(h.LatE6)).i64(int64(h.LonE6)).
		str(n.Status).i64(n.RegisteredHeight).u64(n.JobsVerified).u64(n.JobsFailed).capacity(n)
}

// capacity writes a node's proof-of-capacity record, which came after nodes were first
// stored: a tail written only once a check has recorded one (ProvenHeight set), so a
// node never checked encodes as it always did.
func (e encoder) capacity(n Node) encoder {
	if n.ProvenHeight == 0 {
		return e
	}
	return e.u64(n.ProvenTFLOPSMilli).i64(n.ProvenHeight)
}

func (n *Node) decodeBinary(b []byte) error {
	d := newDecoder(b, kindNode)
	*n = Node{Address: d.addr(), Stake: d.u64(), PricePerHour: d.u64()}
	n.Hardware = Hardware{GPUModel: d.str(), GPUs: d.u32(), VRAMMiB: d.u64(), TFLOPSMilli: d.u64(), Region: d.str(), LatE6: d.i32(), LonE6: d.i32()}
	n.Status, n.RegisteredHeight, n.JobsVerified, n.JobsFailed = d.str(), d.i64(), d.u64(), d.u64()
	if len(d.b) > 0 {
		// The capacity tail: written only with a height, so a zero one is refused.
		if n.ProvenTFLOPSMilli, n.ProvenHeight = d.u64(), d.i64(); n.ProvenHeight == 0 {
			d.fail("capacity tail without a height")
		}
	}
	return d.done()
}

func (v Validator) appendBinary(b []byte) []byte {
	return header(b, kindValidator).addr(v.Address).bytes(v.PubKey).u64(v.Stake).flag(v.Jailed)
}

func (v *Validator) decodeBinary(b []byte) error {
	d := newDecoder(b, kindValidator)
	*v = Validator{Address: d.addr(), PubKey: d.bytes(), Stake: d.u64(), Jailed: d.flag()}
	return d.done()
}

func (j Job) appendBinary(b []byte) []byte {
	e := header(b, kindJob).str(j.ID).addr(j.Consumer).str(j.SpecHash).u64(j.Budget).
		u64(j.MaxPricePerHour).str(j.Verification).u64(j.TimeoutSeconds).str(j.Status).
		i64(j.CreatedHeight).i64(j.DeadlineUnix).addr(j.Node).u64(j.PricePerHour).
		u64(uint64(j.ScoreBP)).i64(j.AssignedHeight).str(j.ResultDigest).u64(j.GPUMillis).
		i64(j.ResultHeight).str(j.Seed).u64(uint64(len(j.Committee)))
	for _, a := range j.Committee {
		e = e.addr(a)
	}
	// An attestation's op count and the node's rate came with billing by operation count,
	// its transcript and audit slash with audits of validators, and the job's draw for
	// that audit and its result found wrong by it too; each follows the flag byte before
	// it, in a spare bit (flags).
	e = e.u64(uint64(len(j.Attestations)))
	for _, a := range j.Attestations {
		e = e.addr(a.Validator).flags(a.Pass, a.Ops != 0, a.Transcript != "", a.AuditSlashed)
		if a.Ops != 0 {
			e = e.u64(a.Ops)
		}
		if levelFields(j.Verification) {
			e = e.u64(a.Millis)
		}
		e = e.str(a.Reason).i64(a.Height)
		if a.Transcript != "" {
			e = e.str(a.Transcript)
		}
	}
	e = e.flags(j.Settlement != nil, j.TFLOPSMilli != 0, j.AttestationsAudited, j.FoundWrong != nil)
	if j.TFLOPSMilli != 0 {
		e = e.u64(j.TFLOPSMilli)
	}
	if s := j.Settlement; s != nil {
		e = e.u64(s.BilledMillis).u64(s.Cost).u64(s.Paid).u64(s.Burned).u64(s.Fee).
			u64(s.Refunded).u64(s.Reward).i64(s.Height)
	}
	if w := j.FoundWrong; w != nil {
		e = e.i64(w.Height).u64(w.Slashed).u64(w.Compensated)
	}
	if levelFields(j.Verification) {
		e = e.flagPair(j.Audited, j.ChallengeReveal != nil).str(j.Challenge)
		if r := j.ChallengeReveal; r != nil {
			e = e.str(r.Salt).str(r.Input).str(r.Rows).str(r.Expected).i64(r.Height)
		}
	}
	return j.appendRedundant(e)
}

// levelFields reports whether a job of this level stores the fields the challenge and
// audit levels brought (Audited, Challenge, ChallengeReveal, Attestation.Millis). Those
// levels came after jobs were first stored, so their records always carry them, in
// place, and the older levels' records keep their bytes.
func levelFields(level string) bool { return level == VerifyChallenge || level == VerifyAudit }

// appendRedundant writes a redundant job's replicas and settlement shares. They came after
// jobs were first stored, so they follow the older fields as a tail that is written only
// when one of them is there: a freivalds job encodes as it always did, and the records
// already stored read back unchanged. The replicas' seals came later still, and follow as
// a tail of this tail (appendSeals).
func (j Job) appendRedundant(e encoder) encoder {
	var shares []Share
	if j.Settlement != nil {
		shares = j.Settlement.Shares
	}
	if len(j.Replicas) == 0 && len(shares) == 0 {
		return e
	}
	e = e.u64(uint64(len(j.Replicas)))
	for _, r := range j.Replicas {
		e = e.addr(r.Node).u64(r.PricePerHour).u64(uint64(r.ScoreBP)).i64(r.AssignedHeight).
			str(r.ResultDigest).u64(r.GPUMillis).i64(r.ResultHeight)
	}
	e = e.u64(uint64(len(shares)))
	for _, s := range shares {
		e = e.addr(s.Node).u64(s.Cost).u64(s.Paid).u64(s.Burned).u64(s.Fee).u64(s.Reward)
	}
	return j.appendSeals(e)
}

// appendSeals writes the replicas' seals, one for each replica in order (empty for one
// that has not sealed), only when at least one has sealed.
func (j Job) appendSeals(e encoder) encoder {
	if countReplicas(j, Replica.Committed) == 0 {
		return e
	}
	for _, r := range j.Replicas {
		e = e.str(r.Seal)
	}
	return e
}

// binarySize is about the length of a job's binary form, a little over as a rule: its
// strings and addresses with a byte each for their lengths, and room for its integers.
func (j Job) binarySize() int {
	n := 2 + 16*binary.MaxVarintLen32 + len(j.ID) + len(j.Consumer) + len(j.SpecHash) +
		len(j.Verification) + len(j.Status) + len(j.Node) + len(j.ResultDigest) + len(j.Seed)
	for _, a := range j.Committee {
		n += 1 + len(a)
	}
	for _, a := range j.Attestations {
		n += 2 + len(a.Validator) + len(a.Reason) + binary.MaxVarintLen32
		if a.Transcript != "" {
			n += 1 + len(a.Transcript)
		}
		if a.Ops != 0 {
			n += binary.MaxVarintLen64
		}
	}
	if j.TFLOPSMilli != 0 {
		n += binary.MaxVarintLen64
	}
	if j.FoundWrong != nil {
		n += 3 * binary.MaxVarintLen64
	}
	if j.Settlement != nil {
		n += 8 * binary.MaxVarintLen32
		for _, s := range j.Settlement.Shares {
			n += 1 + len(s.Node) + 5*binary.MaxVarintLen32
		}
	}
	for _, r := range j.Replicas {
		n += 3 + len(r.Node) + len(r.Seal) + len(r.ResultDigest) + 5*binary.MaxVarintLen32
	}
	if levelFields(j.Verification) {
		n += 2 + len(j.Challenge) + len(j.Attestations)*binary.MaxVarintLen32
		if r := j.ChallengeReveal; r != nil {
			n += 4 + len(r.Salt) + len(r.Input) + len(r.Rows) + len(r.Expected) + binary.MaxVarintLen64
		}
	}
	return n
}

func (j *Job) decodeBinary(b []byte) error {
	d := newDecoder(b, kindJob)
	*j = Job{
		ID: d.str(), Consumer: d.addr(), SpecHash: d.str(), Budget: d.u64(),
		MaxPricePerHour: d.u64(), Verification: d.str(), TimeoutSeconds: d.u64(), Status: d.str(),
		CreatedHeight: d.i64(), DeadlineUnix: d.i64(), Node: d.addr(), PricePerHour: d.u64(),
		ScoreBP: d.u32(), AssignedHeight: d.i64(), ResultDigest: d.str(), GPUMillis: d.u64(),
		ResultHeight: d.i64(), Seed: d.str(),
	}
	if n := d.count(1); n > 0 {
		j.Committee = make([]keys.Address, n)
		for i := range j.Committee {
			j.Committee[i] = d.addr()
		}
	}
	if n := d.count(3); n > 0 {
		j.Attestations = make([]Attestation, n)
		for i := range j.Attestations {
			a := &j.Attestations[i]
			a.Validator = d.addr()
			f := d.flags(4)
			a.Pass, a.AuditSlashed = f&1 != 0, f&8 != 0
			if f&2 != 0 {
				a.Ops = d.nonzero()
			}
			if levelFields(j.Verification) {
				a.Millis = d.u64()
			}
			a.Reason, a.Height = d.str(), d.i64()
			if f&4 != 0 {
				if a.Transcript = d.str(); a.Transcript == "" {
					d.fail("empty transcript after its flag")
				}
			}
		}
	}
	f := d.flags(4)
	settled, hasRate := f&1 != 0, f&2 != 0
	j.AttestationsAudited = f&4 != 0
	if hasRate {
		j.TFLOPSMilli = d.nonzero()
	}
	if settled {
		j.Settlement = &Settlement{
			BilledMillis: d.u64(), Cost: d.u64(), Paid: d.u64(), Burned: d.u64(), Fee: d.u64(),
			Refunded: d.u64(), Reward: d.u64(), Height: d.i64(),
		}
	}
	if f&8 != 0 {
		j.FoundWrong = &FoundWrong{Height: d.i64(), Slashed: d.u64(), Compensated: d.u64()}
	}
	if levelFields(j.Verification) {
		var revealed bool
		j.Audited, revealed = d.flagPair()
		j.Challenge = d.str()
		if revealed {
			j.ChallengeReveal = &ChallengeReveal{Salt: d.str(), Input: d.str(), Rows: d.str(), Expected: d.str(), Height: d.i64()}
		}
	}
	if len(d.b) > 0 {
		j.decodeRedundant(&d)
	}
	return d.done()
}

// decodeRedundant reads the tail appendRedundant writes. A tail with nothing in it, with
// shares but no settlement to hold them, or with seals of which none is set, is not what
// the encoder writes: refused.
func (j *Job) decodeRedundant(d *decoder) {
	if n := d.count(7); n > 0 {
		j.Replicas = make([]Replica, n)
		for i := range j.Replicas {
			j.Replicas[i] = Replica{Node: d.addr(), PricePerHour: d.u64(), ScoreBP: d.u32(), AssignedHeight: d.i64(),
				ResultDigest: d.str(), GPUMillis: d.u64(), ResultHeight: d.i64()}
		}
	}
	n := d.count(6)
	switch {
	case n == 0 && len(j.Replicas) == 0:
		d.fail("empty redundant tail")
	case n > 0 && j.Settlement == nil:
		d.fail("shares without a settlement")
	case n > 0:
		j.Settlement.Shares = make([]Share, n)
		for i := range j.Settlement.Shares {
			j.Settlement.Shares[i] = Share{Node: d.addr(), Cost: d.u64(), Paid: d.u64(), Burned: d.u64(), Fee: d.u64(), Reward: d.u64()}
		}
	}
	if len(d.b) > 0 {
		for i := range j.Replicas {
			j.Replicas[i].Seal = d.str()
		}
		if countReplicas(*j, Replica.Committed) == 0 {
			d.fail("empty seal tail")
		}
	}
}
