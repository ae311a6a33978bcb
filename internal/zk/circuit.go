package zk

import (
	"errors"
	"math/big"

	"github.com/consensys/gnark/constraint/solver"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/std/hash"
	"github.com/consensys/gnark/std/permutation/poseidon2"
	"github.com/consensys/gnark/std/rangecheck"
)

// distBits bounds |q − 127| and |q − lo| for an honest quotient q (|q| < 2^32, see MaxDim),
// the widths the clamp's range checks use.
const distBits = 34

func init() {
	solver.RegisterHint(requantizeHint)
	logger.Disable() // gnark logs every compile and proof to stdout; the daemons have their own logs
}

// mlpCircuit is the relation a proof shows. Its slices are sized by newCircuit; gnark reads
// the exported fields as the witness, public ones first.
type mlpCircuit struct {
	ModelCommitment frontend.Variable   `gnark:",public"`
	InputCommitment frontend.Variable   `gnark:",public"`
	Output          []frontend.Variable `gnark:",public"`

	Input   []frontend.Variable
	Salt    frontend.Variable
	Weights [][]frontend.Variable // per layer, row-major Out×In
	Biases  [][]frontend.Variable

	shape Shape
	// gadgets lets the benchmark's baseline swap in MiMC over unpacked weights and
	// bit-decomposition range checks; nil means poseidonGadgets.
	gadgets func(frontend.API) (gadgets, error)
}

// gadgets are the hash and range checker a circuit is built with, and how many bits of
// values the hash takes per field element.
type gadgets struct {
	h        hasher
	rc       frontend.Rangechecker
	packBits int
}

// hasher is the part of gnark's hash.FieldHasher the circuit uses.
type hasher interface {
	Write(data ...frontend.Variable)
	Sum() frontend.Variable
	Reset()
}

// newCircuit allocates a circuit (or an assignment) for a shape.
func newCircuit(s Shape) *mlpCircuit {
	c := &mlpCircuit{
		Output:  make([]frontend.Variable, s[len(s)-1].Out),
		Input:   make([]frontend.Variable, s[0].In),
		Weights: make([][]frontend.Variable, len(s)),
		Biases:  make([][]frontend.Variable, len(s)),
		shape:   s,
	}
	for i, l := range s {
		c.Weights[i] = make([]frontend.Variable, l.In*l.Out)
		c.Biases[i] = make([]frontend.Variable, l.Out)
	}
	return c
}

// poseidonGadgets hash with Poseidon2 over values packed packBits to an element and range
// check with gnark's log-derivative lookups (one Groth16 commitment for all of them).
func poseidonGadgets(api frontend.API) (gadgets, error) {
	perm, err := poseidon2.NewPoseidon2FromParameters(api, 2, 6, 50)
	if err != nil {
		return gadgets{}, err
	}
	return gadgets{h: hash.NewMerkleDamgardHasher(api, perm, 0), rc: rangecheck.New(api), packBits: packBits}, nil
}

// Define constrains: the commitments open to the witnesses, every witness is in range, and
// the model's integer arithmetic maps Input to Output.
func (c *mlpCircuit) Define(api frontend.API) error {
	newGadgets := c.gadgets
	if newGadgets == nil {
		newGadgets = poseidonGadgets
	}
	g, err := newGadgets(api)
	if err != nil {
		return err
	}
	h, rc := g.h, g.rc
	packed := packer{api: api, rc: rc, h: h, p: packing{limit: g.packBits}}

	// The model commitment: shape header (constants) then every weight and bias.
	for _, e := range modelHeader(c.shape) {
		h.Write(e)
	}
	for li := range c.shape {
		for _, w := range c.Weights[li] {
			packed.add(api.Add(w, 128), 8)
		}
		for _, b := range c.Biases[li] {
			packed.add(api.Add(b, 1<<31), 32)
		}
	}
	packed.flush()
	api.AssertIsEqual(h.Sum(), c.ModelCommitment)

	// The input commitment; packing range-checks every input value too.
	h.Reset()
	h.Write(inputTag, c.Salt, len(c.Input))
	for _, x := range c.Input {
		packed.add(api.Add(x, 128), 8)
	}
	packed.flush()
	api.AssertIsEqual(h.Sum(), c.InputCommitment)

	x := c.Input
	for li, l := range c.shape {
		lo := clampLow(li, len(c.shape))
		y := make([]frontend.Variable, l.Out)
		for j := range y {
			acc := c.Biases[li][j]
			for i := range l.In {
				acc = api.Add(acc, api.Mul(c.Weights[li][j*l.In+i], x[i]))
			}
			y[j] = requantizeGadget(api, rc, acc, l.Shift, lo)
		}
		x = y
	}
	for j, y := range x {
		api.AssertIsEqual(y, c.Output[j])
	}
	return nil
}

// requantizeGadget returns clamp(floor(acc / 2^shift), lo, 127) for an acc known to be
// below 2^33 in absolute value (it is built from range-checked values).
//
// The hint supplies q, r and two flags; the constraints make them the only answer:
//   - acc = q·2^shift + r with 0 ≤ r < 2^shift, so q = floor(acc / 2^shift) once q is small;
//   - above (q > 127) and below (q < lo) are bits, and each flag's claim is a range check:
//     above=1 needs q − 128 ∈ [0, 2^34), above=0 needs 127 − q ∈ [0, 2^34), and the same
//     for below with lo. Both at once would need q > 127 and q < lo. Either way q ends up
//     within 2^34 of the clamp bounds, so q·2^shift + r cannot wrap around the field;
//   - y = q, or 127 when above, or lo when below.
func requantizeGadget(api frontend.API, rc frontend.Rangechecker, acc frontend.Variable, shift uint8, lo int64) frontend.Variable {
	out, err := api.Compiler().NewHint(requantizeHint, 4, acc, int(shift), lo)
	if err != nil {
		panic(err) // only for a wrong number of outputs, fixed here
	}
	return constrainRequantize(api, rc, acc, shift, lo, out[0], out[1], out[2], out[3])
}

// constrainRequantize holds the constraints of requantizeGadget; a test feeds it a
// dishonest prover's values in place of the hint's.
func constrainRequantize(api frontend.API, rc frontend.Rangechecker, acc frontend.Variable, shift uint8, lo int64,
	q, r, above, below frontend.Variable) frontend.Variable {
	api.AssertIsEqual(acc, api.Add(api.Mul(q, 1<<shift), r))
	if shift == 0 {
		api.AssertIsEqual(r, 0)
	} else {
		rc.Check(r, int(shift))
	}
	api.AssertIsBoolean(above)
	api.AssertIsBoolean(below)
	// above ? q−128 : 127−q  =  (2·above − 1)·(q − 127) − above
	rc.Check(api.Sub(api.Mul(api.Sub(api.Mul(above, 2), 1), api.Sub(q, 127)), above), distBits)
	// below ? lo−1−q : q−lo  =  (2·below − 1)·(lo − q) − below
	rc.Check(api.Sub(api.Mul(api.Sub(api.Mul(below, 2), 1), api.Sub(lo, q)), below), distBits)

	y := api.Add(q, api.Mul(above, api.Sub(127, q)))
	return api.Add(y, api.Mul(below, api.Sub(lo, q)))
}

// requantizeHint computes (q, r, above, below) for requantizeGadget from (acc, shift, lo),
// reading field elements above p/2 as negative.
func requantizeHint(field *big.Int, in, out []*big.Int) error {
	if len(in) != 3 || len(out) != 4 {
		return errors.New("requantize hint: want 3 inputs and 4 outputs")
	}
	signed := func(v *big.Int) *big.Int {
		if v.Cmp(new(big.Int).Rsh(field, 1)) > 0 {
			return new(big.Int).Sub(v, field)
		}
		return new(big.Int).Set(v)
	}
	acc, lo := signed(in[0]), signed(in[2])
	shift := uint(in[1].Uint64())
	q := new(big.Int).Rsh(acc, shift) // floors for negative values
	r := new(big.Int).Sub(acc, new(big.Int).Lsh(q, shift))
	above, below := big.NewInt(0), big.NewInt(0)
	if q.Cmp(big.NewInt(127)) > 0 {
		above.SetInt64(1)
	}
	if q.Cmp(lo) < 0 {
		below.SetInt64(1)
	}
	out[0].Mod(q, field)
	out[1].Set(r)
	out[2].Set(above)
	out[3].Set(below)
	return nil
}

// packer range-checks values and writes them, packed, into a hash.
type packer struct {
	api frontend.API
	rc  frontend.Rangechecker
	h   hasher
	cur frontend.Variable
	p   packing
}

// add range-checks v to bits and appends it to the current packed element.
func (p *packer) add(v frontend.Variable, bits int) {
	p.rc.Check(v, bits)
	off, fresh := p.p.place(bits)
	if fresh {
		if p.cur != nil {
			p.h.Write(p.cur)
		}
		p.cur = v
		return
	}
	p.cur = p.api.Add(p.cur, p.api.Mul(v, new(big.Int).Lsh(big.NewInt(1), uint(off))))
}

// flush writes the current packed element, if any, to the hash.
func (p *packer) flush() {
	if p.cur != nil {
		p.h.Write(p.cur)
	}
	p.cur = nil
	p.p.used = 0
}
