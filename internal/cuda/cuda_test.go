package cuda

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// openForTest opens GPU 0 with the embedded kernels, or with the freivalds.ptx and mma.ptx
// in the directory OMNISYNC_CUDA_PTX_DIR names (freshly compiled), and skips where there is
// no GPU.
func openForTest(t testing.TB) *Device {
	t.Helper()
	img := images{freivalds: freivaldsPTX, mma: mmaPTX, gemm: gemmPTX}
	if dir := os.Getenv("OMNISYNC_CUDA_PTX_DIR"); dir != "" {
		for _, f := range []struct {
			name string
			to   *[]byte
		}{{"freivalds.ptx", &img.freivalds}, {"mma.ptx", &img.mma}, {"gemm.ptx", &img.gemm}} {
			b, err := os.ReadFile(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			*f.to = b
		}
	}
	d, err := open(0, img)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func TestOpenWithoutAGPUSaysWhy(t *testing.T) {
	d, err := Open(0)
	if err == nil {
		d.Close()
		t.Skip("this machine has a GPU")
	}
	if !errors.Is(err, ErrUnavailable) || err.Error() == ErrUnavailable.Error() {
		t.Fatalf("Open: %v; want ErrUnavailable with the reason", err)
	}
}

func TestDeviceIdentity(t *testing.T) {
	d := openForTest(t)
	if d.Name() == "" || !regexp.MustCompile(`^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(d.UUID()) {
		t.Fatalf("name %q, UUID %q", d.Name(), d.UUID())
	}
	t.Logf("%s %s", d.Name(), d.UUID())
}

// The tensor-core benchmark gives a rate, and about the same one twice.
func TestMeasureBF16(t *testing.T) {
	d := openForTest(t)
	first, err := d.MeasureBF16(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.MeasureBF16(100 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.0f and %.0f TFLOPS bf16 (mma.sync)", d.Name(), first, second)
	if first <= 0 || first > 10000 || second < first/2 || second > first*2 {
		t.Fatalf("rates %v and %v", first, second)
	}
}

var p61 = new(big.Int).SetUint64(1<<61 - 1)

// matVec is M·v mod p, computed with big integers.
func matVec[T int8 | int32](rows, cols int, m []T, v []uint64) []uint64 {
	out := make([]uint64, rows)
	for i := range rows {
		s, x := new(big.Int), new(big.Int)
		for j := range cols {
			x.SetInt64(int64(m[i*cols+j]))
			s.Add(s, x.Mul(x, new(big.Int).SetUint64(v[j])))
		}
		out[i] = s.Mod(s, p61).Uint64()
	}
	return out
}

func extremes[T int8 | int32](n int, lo, hi T, seed uint64) []T {
	out := make([]T, n)
	for i := range out {
		seed = seed*6364136223846793005 + 1442695040888963407
		switch seed >> 62 {
		case 0:
			out[i] = lo
		case 1:
			out[i] = hi
		default:
			out[i] = T(int64(seed>>33) % (int64(hi) + 1))
		}
	}
	return out
}

// The GPU's products equal big-integer arithmetic's, row for row, on shapes that leave
// warps part-full and on entries at the types' extremes.
func TestProductsMatchBigIntegers(t *testing.T) {
	d := openForTest(t)
	for _, s := range [][3]int{{1, 1, 1}, {33, 65, 31}, {300, 517, 129}, {8, 4096, 3}} {
		m, k, n := s[0], s[1], s[2]
		a := &tensor.Int8Matrix{Rows: m, Cols: k, Data: extremes[int8](m*k, -128, 127, 1)}
		b := &tensor.Int8Matrix{Rows: k, Cols: n, Data: extremes[int8](k*n, -128, 127, 2)}
		c := &tensor.Int32Matrix{Rows: m, Cols: n, Data: extremes[int32](m*n, -1<<31, 1<<31-1, 3)}
		prods, release, err := d.LoadInt8(a, b, c)
		if err != nil {
			t.Fatal(err)
		}
		r := make([]uint64, n)
		for j, x := range extremes[int32](n, 0, 1<<31-1, 4) {
			r[j] = uint64(x)<<30 | uint64(j) // up to 2^61 - 1
		}
		r[0] = 1<<61 - 2 // the largest element of F_p
		abr, cr := make([]uint64, m), make([]uint64, m)
		if err := prods.Round(r, abr, cr); err != nil {
			t.Fatal(err)
		}
		release()
		wantABR := matVec(m, k, a.Data, matVec(k, n, b.Data, r))
		wantCR := matVec(m, n, c.Data, r)
		for i := range m {
			if abr[i] != wantABR[i] || cr[i] != wantCR[i] {
				t.Fatalf("%v row %d: GPU A·(B·r)=%d C·r=%d, big integers %d and %d", s, i, abr[i], cr[i], wantABR[i], wantCR[i])
			}
		}
	}
}

// On the GPU, verify's check gives the CPU's verdict and transcript, for an honest product
// and for one with a single wrong element.
func TestFreivaldsOnTheGPUGivesTheCPUsVerdict(t *testing.T) {
	d := openForTest(t)
	a, _ := tensor.RandomInt8(257, 300, 1)
	b, _ := tensor.RandomInt8(300, 129, 2)
	c, err := tensor.MatMulInt8(a, b)
	if err != nil {
		t.Fatal(err)
	}
	var seed [32]byte
	for i := range 3 {
		seed[0] = byte(i)
		if i == 2 {
			c.Data[129*200+77]++ // one wrong element
		}
		want, err := verify.FreivaldsInt8(a, b, c, seed, 2)
		if err != nil {
			t.Fatal(err)
		}
		got, err := verify.FreivaldsInt8On(d, a, b, c, seed, 2)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("seed %d: GPU %+v, CPU %+v", i, got, want)
		}
		if i == 2 && (got.OK || got.BadRow != 200) {
			t.Fatalf("the wrong element passed on the GPU: %+v", got)
		}
	}
}

// The GPU's int8 product is the CPU's, element for element, on shapes that leave tiles
// part-full and k not a multiple of the kernel's steps, and on the extreme values.
func TestMatMulInt8MatchesTheCPU(t *testing.T) {
	d := openForTest(t)
	for i, s := range [][3]int{{1, 1, 1}, {3, 5, 2}, {65, 33, 70}, {64, 64, 64}, {300, 1001, 129}, {17, tensor.MaxInner, 9}} {
		m, k, n := s[0], s[1], s[2]
		a := &tensor.Int8Matrix{Rows: m, Cols: k, Data: extremes[int8](m*k, -128, 127, uint64(10+i))}
		b := &tensor.Int8Matrix{Rows: k, Cols: n, Data: extremes[int8](k*n, -128, 127, uint64(20+i))}
		want, err := tensor.MatMulInt8(a, b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.MatMulInt8(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Rows != want.Rows || got.Cols != want.Cols {
			t.Fatalf("%v: %dx%d, want %dx%d", s, got.Rows, got.Cols, want.Rows, want.Cols)
		}
		for e := range want.Data {
			if got.Data[e] != want.Data[e] {
				t.Fatalf("%v: element (%d, %d) is %d on the GPU, %d on the CPU", s, e/n, e%n, got.Data[e], want.Data[e])
			}
		}
	}
	if _, err := d.MatMulInt8(&tensor.Int8Matrix{Rows: 2, Cols: 3, Data: make([]int8, 6)}, &tensor.Int8Matrix{Rows: 2, Cols: 2, Data: make([]int8, 4)}); err == nil {
		t.Fatal("non-conforming operands multiplied")
	}
}

// A product the GPU got wrong fails its own check on the GPU, so the node never commits it.
func TestAWrongProductIsCaughtOnTheGPU(t *testing.T) {
	d := openForTest(t)
	a, _ := tensor.RandomInt8(70, 300, 3)
	b, _ := tensor.RandomInt8(300, 90, 4)
	d.corruptAt = 70*90 - 1
	if c, err := d.MatMulInt8(a, b); !errors.Is(err, ErrWrongProduct) || c != nil {
		t.Fatalf("a planted fault: %v, %v", c, err)
	}
	d.corruptAt = -1
	if _, err := d.MatMulInt8(a, b); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
}

// Products and checks from many goroutines at once take turns on the GPU and each gets its
// own answer (run under -race on a GPU machine).
func TestConcurrentUse(t *testing.T) {
	d := openForTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, _ := tensor.RandomInt8(100+g, 64, uint64(g))
			b, _ := tensor.RandomInt8(64, 50+g, uint64(g+100))
			want, _ := tensor.MatMulInt8(a, b)
			for range 5 {
				got, err := d.MatMulInt8(a, b)
				if err != nil || !slices.Equal(got.Data, want.Data) {
					errs <- fmt.Errorf("goroutine %d: product differs (%v)", g, err)
					return
				}
				v, err := verify.FreivaldsInt8On(d, a, b, got, [32]byte{byte(g)}, 2)
				if err != nil || !v.OK {
					errs <- fmt.Errorf("goroutine %d: check %+v, %v", g, v, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkMatMulInt8GPU times an n×n×n int8 product on the GPU, the copies both ways
// included, and reports the CPU's time for the same product (tensor.MatMulInt8, every
// core), measured once in the same run, and the ratio.
func BenchmarkMatMulInt8GPU(b *testing.B) {
	d := openForTest(b)
	for _, n := range []int{1024, 2048, 4096} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			x, _ := tensor.RandomInt8(n, n, 1)
			y, _ := tensor.RandomInt8(n, n, 2)
			start := time.Now()
			want, err := tensor.MatMulInt8(x, y)
			if err != nil {
				b.Fatal(err)
			}
			cpu := time.Since(start)
			b.ResetTimer()
			for range b.N {
				got, err := d.MatMulInt8(x, y)
				if err != nil || got.Data[n*n-1] != want.Data[n*n-1] {
					b.Fatalf("GPU product: %v", err)
				}
			}
			gpu := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(2*float64(n)*float64(n)*float64(n)/gpu.Seconds()/1e12, "TOPS")
			b.ReportMetric(float64(cpu.Milliseconds()), "cpu-ms")
			b.ReportMetric(float64(cpu)/float64(gpu), "cpu/gpu")
		})
	}
}

// identityProduct is an n×n check whose product is known without computing it: B = I, so
// C = A. Freivalds' cost depends on the shapes, not the values.
func identityProduct(n int) (a, b *tensor.Int8Matrix, c *tensor.Int32Matrix) {
	a, _ = tensor.RandomInt8(n, n, 7)
	b = &tensor.Int8Matrix{Rows: n, Cols: n, Data: make([]int8, n*n)}
	c = &tensor.Int32Matrix{Rows: n, Cols: n, Data: make([]int32, n*n)}
	for i := range n {
		b.Data[i*n+i] = 1
	}
	for i, x := range a.Data {
		c.Data[i] = int32(x)
	}
	return a, b, c
}

// BenchmarkFreivaldsGPU times a whole two-round check on the GPU, copying A, B and C to it
// included, and reports the CPU's time for the same check, measured in the same run, the
// ratio, and how much of the GPU's time the copies take (load-ms: LoadInt8 alone).
func BenchmarkFreivaldsGPU(b *testing.B) {
	d := openForTest(b)
	for _, n := range []int{1024, 2048, 4096, 8192} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			a, bm, c := identityProduct(n)
			var seed [32]byte
			cpu := time.Duration(1 << 62)
			for range 3 {
				start := time.Now()
				if v, err := verify.FreivaldsInt8(a, bm, c, seed, verify.DefaultRounds); err != nil || !v.OK {
					b.Fatalf("CPU: %+v %v", v, err)
				}
				cpu = min(cpu, time.Since(start))
			}
			load := time.Duration(1 << 62)
			for range 3 {
				start := time.Now()
				_, release, err := d.LoadInt8(a, bm, c)
				if err != nil {
					b.Fatal(err)
				}
				load = min(load, time.Since(start))
				release()
			}
			b.ResetTimer()
			for range b.N {
				if v, err := verify.FreivaldsInt8On(d, a, bm, c, seed, verify.DefaultRounds); err != nil || !v.OK {
					b.Fatalf("GPU: %+v %v", v, err)
				}
			}
			gpu := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(cpu.Microseconds())/1e3, "cpu-ms")
			b.ReportMetric(float64(load.Microseconds())/1e3, "load-ms")
			b.ReportMetric(float64(cpu)/float64(gpu), "cpu/gpu")
		})
	}
}
