package ledger

import "slices"

// A freivalds job is billed for the work its committee verified, not for the GPU time its
// node reports: a node once reported 2^62 ms for 2 ms of work and, capped only by the
// timeout, was paid for all of it. Each passing validator states the operation count it
// computed from the job's spec and inputs (MsgAttest.Ops); the job is billed the lower
// median of those counts at the rate its node registered when it was placed
// (Job.TFLOPSMilli), or the reported time when that is less.

// opsPerMilliPerTFLOPSMilli is how many operations one milli-TFLOPS does in a millisecond:
// 10^12/1000 per second, 10^6 per millisecond.
const opsPerMilliPerTFLOPSMilli = 1_000_000

// verifiedOps is the lower median of the operation counts the job's passing attesters
// stated. One validator that overstates the count cannot raise it: to move the median up,
// more than half of the passing attesters must. It is 0 when none passed.
func verifiedOps(j Job) uint64 {
	var counts [8]uint64 // a committee's worth without allocating
	ops := counts[:0]
	for _, a := range j.Attestations {
		if a.Pass {
			ops = append(ops, a.Ops)
		}
	}
	if len(ops) == 0 {
		return 0
	}
	slices.Sort(ops)
	return ops[(len(ops)-1)/2]
}

// verifiedMillis is the time the job's verified operation count takes at its node's
// registered rate, rounded up: ceil(ops / (TFLOPSMilli·10^6)). It is computed as
// ceil(ceil(ops/10^6) / TFLOPSMilli), which is the same number and cannot overflow. A job
// with no rate recorded (one placed before billing by operation count) has nothing
// verified to bill: 0, so it is billed the minimum.
func verifiedMillis(j Job) uint64 {
	if j.TFLOPSMilli == 0 {
		return 0
	}
	return ceilDiv(ceilDiv(verifiedOps(j), opsPerMilliPerTFLOPSMilli), j.TFLOPSMilli)
}

// ceilDiv is a/b rounded up, for b > 0.
func ceilDiv(a, b uint64) uint64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}
