// Package runtimetest holds fakes of the runtime's seams for other packages' tests.
package runtimetest

import "github.com/omnisync/omnisync/internal/tensor"

// GPU is a runtime.GPU that multiplies on the CPU, or fails with Err, counting its calls.
// Not safe for concurrent use.
type GPU struct {
	Calls int
	Err   error
}

// Name names the fake.
func (*GPU) Name() string { return "Fake GPU" }

// MatMulInt8 is tensor.MatMulInt8, or Err.
func (g *GPU) MatMulInt8(a, b *tensor.Int8Matrix) (*tensor.Int32Matrix, error) {
	g.Calls++
	if g.Err != nil {
		return nil, g.Err
	}
	return tensor.MatMulInt8(a, b)
}
