package zk

import (
	"encoding/hex"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// Commitments are Poseidon2 (BN254, width 2, 6 full and 50 partial rounds: gnark-crypto's
// default) in Merkle–Damgård mode from a zero state, over field elements that pack the
// values 31 bytes at a time. Poseidon2 costs about half the constraints of MiMC per element
// in R1CS, and packing 31 weights into one element cuts the hashing 31-fold; the range
// checks that packing needs are cheap lookups.
//
// The model hash covers a domain tag, the shape (sizes and shifts) and then, per layer,
// every weight plus 128 in 8 bits and every bias plus 2^31 in 32 bits. The input hash covers
// another tag, the salt, the length and every input value plus 128 in 8 bits.

// Commitment is a BN254 scalar, big-endian, as it appears among a proof's public inputs.
type Commitment [fr.Bytes]byte

// String returns the commitment in hex.
func (c Commitment) String() string { return hex.EncodeToString(c[:]) }

// Salt blinds an input commitment: without it, a small input could be found by trying
// them all against its hash. The consumer picks it at random and gives it to the node.
type Salt [16]byte

// packBits is how much of a field element one packed element fills (31 whole bytes).
const packBits = 248

var (
	modelTag = tagElement("omnisync/zk/mlp-model/v1")
	inputTag = tagElement("omnisync/zk/mlp-input/v1")
)

func tagElement(s string) *big.Int { return new(big.Int).SetBytes([]byte(s)) }

// item is one value to pack: an unsigned offset value and its width in bits.
type item struct {
	value int64
	bits  int
}

// modelHeader and modelItems define the model hash; the circuit uses the same layout.
func modelHeader(s Shape) []*big.Int {
	h := []*big.Int{modelTag, big.NewInt(int64(len(s)))}
	for _, l := range s {
		h = append(h, big.NewInt(int64(l.In)), big.NewInt(int64(l.Out)), big.NewInt(int64(l.Shift)))
	}
	return h
}

func inputHeader(salt Salt, n int) []*big.Int {
	return []*big.Int{inputTag, new(big.Int).SetBytes(salt[:]), big.NewInt(int64(n))}
}

// packing assigns items to field elements in order, starting a new element whenever the
// next item would pass packBits.
type packing struct{ used, limit int }

// place returns the bit offset of an item of the given width, and whether the item opens
// a new element (the previous one, if any, is then complete).
func (p *packing) place(bits int) (offset int, fresh bool) {
	if p.used == 0 || p.used+bits > p.limit {
		p.used = bits
		return 0, true
	}
	offset = p.used
	p.used += bits
	return offset, false
}

func packItems(items []item, limit int) []*big.Int {
	var out []*big.Int
	p := packing{limit: limit}
	for _, it := range items {
		off, fresh := p.place(it.bits)
		if fresh {
			out = append(out, new(big.Int))
		}
		v := new(big.Int).Lsh(big.NewInt(it.value), uint(off))
		out[len(out)-1].Add(out[len(out)-1], v)
	}
	return out
}

func modelItems(m *Model) []item {
	var items []item
	for _, l := range m.Layers {
		for _, w := range l.Weights {
			items = append(items, item{int64(w) + 128, 8})
		}
		for _, b := range l.Biases {
			items = append(items, item{int64(b) + 1<<31, 32})
		}
	}
	return items
}

func inputItems(x []int8) []item {
	items := make([]item, len(x))
	for i, v := range x {
		items[i] = item{int64(v) + 128, 8}
	}
	return items
}

// hashElements is the Merkle–Damgård Poseidon2 hash the circuit computes.
func hashElements(elems []*big.Int) Commitment {
	perm := poseidon2.NewPermutation(2, 6, 50) // = poseidon2.GetDefaultParameters()
	var state fr.Element
	for _, e := range elems {
		var x fr.Element
		x.SetBigInt(e)
		pair := [2]fr.Element{state, x}
		if err := perm.Permutation(pair[:]); err != nil {
			panic(err) // width 2 is fixed above
		}
		state.Add(&pair[1], &x)
	}
	return state.Bytes()
}

// ModelCommitment is the hash the circuit binds a proof to.
func ModelCommitment(m *Model) (Commitment, error) {
	if err := m.Validate(); err != nil {
		return Commitment{}, err
	}
	return hashElements(append(modelHeader(m.Shape()), packItems(modelItems(m), packBits)...)), nil
}

// InputCommitment is the salted hash of an input that a proof's public inputs carry.
func InputCommitment(x []int8, salt Salt) Commitment {
	return hashElements(append(inputHeader(salt, len(x)), packItems(inputItems(x), packBits)...))
}
