package hw

import (
	"fmt"
	"time"

	"github.com/omnisync/omnisync/internal/cuda"
)

// MeasureGPUFunc runs a short tensor-core benchmark on g for about d and returns the bf16
// rate it sustained in TFLOPS and how it was measured.
type MeasureGPUFunc func(g GPU, d time.Duration) (tflops float64, how string, err error)

// measureCUDA is the default MeasureGPUFunc: internal/cuda's mma.sync benchmark on the CUDA
// device with g's UUID (CUDA and NVML may number GPUs differently), or with g's index when
// g has no UUID.
func measureCUDA(g GPU, d time.Duration) (float64, string, error) {
	dev, err := openCUDA(g)
	if err != nil {
		return 0, "", err
	}
	defer dev.Close()
	tflops, err := dev.MeasureBF16(d)
	if err != nil {
		return 0, "", err
	}
	return tflops, "bf16 mma.sync on its tensor cores (CUDA driver)", nil
}

func openCUDA(g GPU) (*cuda.Device, error) {
	if g.UUID == "" {
		return cuda.Open(g.Index)
	}
	for i := 0; ; i++ {
		dev, err := cuda.Open(i)
		if err != nil {
			return nil, fmt.Errorf("no CUDA GPU with UUID %s: %w", g.UUID, err)
		}
		if dev.UUID() == g.UUID {
			return dev, nil
		}
		dev.Close()
	}
}

// confirmFraction is how much of its table figure a known GPU's measured rate must reach
// to confirm it. The benchmark uses mma.sync, not Hopper's faster wgmma, and runs for a
// fraction of a second, so it reads below the published peak; what it must show is the
// class of the GPU: the table's bf16 figures of neighbouring classes differ by 2-14x (an
// RTX 3090's 71 against an H200's 989), so a card that reaches a third of its claim is
// what it says, and one that does not is declared at what it measured.
const confirmFraction = 1.0 / 3

// benchGPU measures g with measure for d, recording the result or why there is none in
// g.Bench; a negative d skips it.
func benchGPU(g *GPU, d time.Duration, measure MeasureGPUFunc) {
	if d < 0 {
		g.Bench = "skipped"
		return
	}
	tflops, how, err := measure(*g, d)
	switch {
	case err != nil:
		g.Bench = "not measured: " + err.Error()
	case tflops <= 0:
		g.Bench = "not measured: the benchmark reported no rate"
	default:
		g.MeasuredTFLOPS = round(tflops, 1)
		g.Bench = fmt.Sprintf("measured: %s, %.1f TFLOPS over %s", how, g.MeasuredTFLOPS, d)
	}
}
