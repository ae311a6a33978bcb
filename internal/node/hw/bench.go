package hw

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/omnisync/omnisync/internal/tensor"
)

// The benchmark's product is small enough that one takes well under a
// millisecond on a modern core, so even a test's few-millisecond run counts
// whole products on every worker.
const benchM, benchK, benchN = 64, 256, 64

// benchCPU measures the int8 rate of tensor.MatMulInt8, the kernel the node's
// native runtime serves, on GOMAXPROCS goroutines for about d (each does at
// least one product). A negative d skips it.
func benchCPU(ctx context.Context, d time.Duration, c *CPU) error {
	if d < 0 {
		c.Bench = "skipped"
		return nil
	}
	a, err := tensor.RandomInt8(benchM, benchK, 1)
	if err != nil {
		return fmt.Errorf("cpu benchmark: %w", err)
	}
	b, err := tensor.RandomInt8(benchK, benchN, 2)
	if err != nil {
		return fmt.Errorf("cpu benchmark: %w", err)
	}
	workers := runtime.GOMAXPROCS(0)
	products := make([]int, workers)
	errs := make([]error, workers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				if _, err := tensor.MatMulInt8(a, b); err != nil {
					errs[w] = err
					return
				}
				products[w]++
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		c.Bench = "interrupted"
		return err
	}
	total := 0
	for w := range workers {
		if errs[w] != nil {
			return fmt.Errorf("cpu benchmark: %w", errs[w])
		}
		total += products[w]
	}
	ops := float64(total) * 2 * benchM * benchK * benchN
	c.MeasuredGOPSInt8 = round(ops/elapsed.Seconds()/1e9, 2)
	c.Bench = fmt.Sprintf("measured: %d int8 products %d×%d·%d×%d (tensor.MatMulInt8) on %d goroutines in %v",
		total, benchM, benchK, benchK, benchN, workers, elapsed.Round(time.Millisecond))
	return nil
}
