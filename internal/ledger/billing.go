package ledger

import "slices"

// A freivalds job is billed for the work its committee verified, not for the GPU time its
// node reports: a node once reported 2^62 ms for 2 ms of work and, capped only by the
// timeout, was paid for all of it. Each passing validator states the operation count it
// computed from the job's spec and inputs (MsgAttest.Ops); the job is billed the lower
// median of those counts at its node's rate when it was placed (Job.TFLOPSMilli: the
// declared rate, or the proven one when a capacity check recorded less; see
// Node.BillingTFLOPSMilli), or the reported time when that is less.

// opsPerMilliPerTFLOPSMilli is how many operations one milli-TFLOPS does in a millisecond:
// 10^12/1000 per second, 10^6 per millisecond.
const opsPerMilliPerTFLOPSMilli = 1_000_000

// verifiedOps is the lower median of the operation counts the job's passing attesters
// stated. One validator that overstates the count cannot raise it: to move the median up,
// more than half of the passing attesters must. It is 0 when none passed.
func verifiedOps(j Job) uint64 {
	return lowerMedian(j, func(a Attestation) uint64 { return a.Ops })
}

// lowerMedian is the lower median of a figure the job's passing attesters stated, 0 when
// none passed.
func lowerMedian(j Job, figure func(Attestation) uint64) uint64 {
	var counts [8]uint64 // a committee's worth without allocating
	xs := counts[:0]
	for _, a := range j.Attestations {
		if a.Pass {
			xs = append(xs, figure(a))
		}
	}
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// billableMillis is the GPU time a single-node job may be billed, before the minimum and
// the timeout apply (billedMillis): the time its node reported, but no more than what was
// verified. An audit job the draw did not audit had nobody check it: it is billed what
// its node reported, which the timeout and budget bound.
func billableMillis(j Job) uint64 {
	if j.Verification == VerifyAudit && !j.Audited {
		return j.GPUMillis
	}
	return min(j.GPUMillis, verifiedMillis(j))
}

// verifiedMillis is the time the job's verified operation count takes at its node's
// registered rate, rounded up: ceil(ops / (TFLOPSMilli·10^6)). It is computed as
// ceil(ceil(ops/10^6) / TFLOPSMilli), which is the same number and cannot overflow. A job
// with no rate recorded (one placed before billing by operation count) has nothing
// verified to bill: 0, so it is billed the minimum. A container's audit has no operation
// count: it is the lower median of the milliseconds the passing auditors' runs took.
func verifiedMillis(j Job) uint64 {
	if ops := verifiedOps(j); ops == 0 {
		return lowerMedian(j, func(a Attestation) uint64 { return a.Millis })
	} else if j.TFLOPSMilli != 0 {
		return ceilDiv(ceilDiv(ops, opsPerMilliPerTFLOPSMilli), j.TFLOPSMilli)
	}
	return 0
}

// ceilDiv is a/b rounded up, for b > 0.
func ceilDiv(a, b uint64) uint64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}
