package validator

import (
	"errors"
	"testing"

	"github.com/omnisync/omnisync/internal/metrics/metricstest"
	"github.com/omnisync/omnisync/internal/tensor"
	"github.com/omnisync/omnisync/internal/verify"
)

// faultyGPU is a GPU that errs (err) or computes wrongly: its A·(B·r) is never C·r, so it
// fails every result, right or wrong.
type faultyGPU struct{ err error }

func (g faultyGPU) LoadInt8(*tensor.Int8Matrix, *tensor.Int8Matrix, *tensor.Int32Matrix) (verify.Int8Products, func(), error) {
	return g, func() {}, nil
}

func (g faultyGPU) Round(_, abr, cr []uint64) error {
	if g.err != nil {
		return g.err
	}
	for i := range abr {
		abr[i], cr[i] = 1, 2
	}
	return nil
}

// A validator whose GPU is faulty attests what its CPU finds: an honest result passes,
// with the CPU's transcript, so the node is paid; a wrong one still fails.
func TestAFaultyGPUNeverFailsAnHonestResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gpu     faultyGPU
		outcome string
	}{{"wrong products", faultyGPU{}, "overruled"}, {"device lost", faultyGPU{err: errors.New("device lost")}, "error"}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRigWith(t, func(o *Options) { o.GPU = tc.gpu })
			c, _ := tensor.MatMulInt8(r.a, r.b)
			r.commitOutput(t, c)
			if v := r.verify(t, r.spec); !v.Pass {
				t.Fatalf("honest result: %+v", v)
			}
			if got, want := r.chain.attests[0].Transcript, verify.AttestTranscript(r.check(t, c).Transcript, r.id); got != want {
				t.Fatalf("transcript %s, want the CPU's %s", got, want)
			}
			metricstest.ScrapeGatherer(t, r.reg).Want(t, map[string]float64{
				`omnisync_validator_gpu_checks_total{outcome="` + tc.outcome + `"}`: 1,
				`omnisync_validator_gpu_checks_total{outcome="done"}`:               0,
			})
		})
	}
	t.Run("a wrong result", func(t *testing.T) {
		r := newRigWith(t, func(o *Options) { o.GPU = faultyGPU{} })
		wrong, _ := tensor.MatMulInt8(r.a, r.b)
		wrong.Data[5]--
		r.commitOutput(t, wrong)
		if v := r.verify(t, r.spec); v.Pass || len(r.chain.attests) != 1 || r.chain.attests[0].Pass {
			t.Fatalf("wrong result: %+v, attests %+v", v, r.chain.attests)
		}
		metricstest.ScrapeGatherer(t, r.reg).Want(t, map[string]float64{
			`omnisync_validator_gpu_checks_total{outcome="failed"}`:    1,
			`omnisync_validator_gpu_checks_total{outcome="overruled"}`: 0,
		})
	})
}
