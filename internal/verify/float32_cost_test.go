package verify

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

// BenchmarkFreivaldsFloat32Cost prices the fp32 check against the product it checks, in
// one run: the node's product (tensor.RunKernel with matmul-fp32, decoding and encoding
// included) and the validator's check (CheckKernel with DefaultRounds), for random n×n
// operands uniform in [-1, 1). It also reports how far the bound sits above the honest
// residual it measured (bound-x-residual: the bound over the largest residual, row by row)
// and the bound's size against the product's elements (bound-per-elem: the median row's
// bound over the mean |c_ij|, the smallest one-element change every round surely sees, in
// typical elements, is about 1.5× that to 3× it).
//
//	go test ./internal/verify -run '^$' -bench FreivaldsFloat32Cost -benchtime 1x
func BenchmarkFreivaldsFloat32Cost(b *testing.B) {
	for _, n := range []int{256, 512, 1024} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, err := tensor.RandomFloat32(n, n, uint64(n))
			if err != nil {
				b.Fatal(err)
			}
			y, err := tensor.RandomFloat32(n, n, uint64(n)+1)
			if err != nil {
				b.Fatal(err)
			}
			inputs := [][]byte{encode(b, x), encode(b, y)}
			var product, check time.Duration
			var out []byte
			for b.Loop() {
				start := time.Now()
				if out, err = tensor.RunKernel(tensor.KernelMatMulFloat32, inputs); err != nil {
					b.Fatal(err)
				}
				product += time.Since(start)
				start = time.Now()
				v, err := CheckKernel(tensor.KernelMatMulFloat32, inputs, out, seedOf(n), DefaultRounds)
				if err != nil || !v.OK {
					b.Fatal(v, err)
				}
				check += time.Since(start)
			}
			c, err := tensor.DecodeFloat32(out)
			if err != nil {
				b.Fatal(err)
			}
			share, tolMin, _ := residuals(x, y, c, seedOf(n), DefaultRounds)
			runs := float64(b.N)
			b.ReportMetric(product.Seconds()/runs, "product-s")
			b.ReportMetric(1000*check.Seconds()/runs, "check-ms")
			b.ReportMetric(100*float64(check)/float64(product), "check-%")
			b.ReportMetric(1/slices.Max(share), "bound-x-residual")
			b.ReportMetric(median(tolMin)/meanAbs(c), "bound-per-elem")
		})
	}
}
