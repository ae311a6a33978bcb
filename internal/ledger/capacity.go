package ledger

import (
	"fmt"
	"slices"

	"github.com/omnisync/omnisync/internal/keys"
)

// Proof of capacity: a validator challenges a node with a chain of dense products
// (verify.CapacityChallenge) whose answer is due within a deadline its declared rate sets,
// spot-checks the answer and reports the outcome here. The outcomes:
//
//   - proven: the answer came in time and its spot checks passed. The node's declared
//     rate is its proven rate (ProvenTFLOPSMilli), what its jobs are billed at. The
//     deadline's slack already forgave the network and jitter, so the measured rate,
//     which includes them, is reported (an event) but not held against the node.
//   - slow: the answer came late, or not at all, with no evidence of fraud. No slash: a
//     node with the GPU it declared behind a slow network may be slow. It counts against
//     reliability (JobsFailed), and the measured rate, at most the declared one, becomes
//     its proven rate, so its jobs are billed at what it showed until a later challenge
//     proves more.
//   - wrong: a spot check found a link's product that is not the product of the one
//     before, or does not match the digest the node committed: evidence. The node is
//     slashed FraudSlashBP, as for a wrong result, and loses reliability. The whole slash
//     burns, so no reporter profits from it.
//
// The evidence stays with the validators (the products checked are far larger than a
// transaction), so one validator's word must not be enough to harm a node: a slow or
// wrong report is held (capacityReportKey) until more than a third of the active
// validators have reported against the node within CapacityReportWindow blocks, the rule
// a job's committee fails a result by. Then the node is slashed if more than a third said
// wrong, and otherwise found slow, at the lower median of the rates the reports measured;
// the reports are then spent. With one validator its report decides at once; with three,
// a lone liar decides nothing. A proven report applies at once: it only restores the
// declared rate, and cannot harm the node.
const (
	CapacityProven = "proven"
	CapacitySlow   = "slow"
	CapacityWrong  = "wrong"
)

var capacityOutcomes = []string{CapacityProven, CapacitySlow, CapacityWrong}

// CapacityReportWindow is how many blocks a slow or wrong report waits for others.
const CapacityReportWindow = 3600

var prefixCapReport = []byte("capreport/")

// capacityReportKey is where a validator's pending report against a node waits.
func capacityReportKey(node, validator keys.Address) []byte {
	return []byte(fmt.Sprintf("%s%s/%s", prefixCapReport, node, validator))
}

// heldReport is a slow or wrong report waiting for others (capacityReportKey).
type heldReport struct {
	Validator keys.Address `json:"validator"`
	Outcome   string       `json:"outcome"`
	Measured  uint64       `json:"measured_tflops_milli,omitempty"`
	Height    int64        `json:"height"`
}

// MsgCapacityReport is a validator's report of a proof-of-capacity challenge: Ops is the
// challenge's operation count, Millis how long the node took to answer (for a slow node
// that never answered, the deadline), Outcome one of CapacityProven, CapacitySlow and
// CapacityWrong, and Reason what the checks found.
type MsgCapacityReport struct {
	Node    keys.Address `json:"node"`
	Ops     uint64       `json:"ops"`
	Millis  uint64       `json:"millis"`
	Outcome string       `json:"outcome"`
	Reason  string       `json:"reason,omitempty"`
}

func (m *MsgCapacityReport) validate() error {
	if err := m.Node.Validate(); err != nil {
		return fmt.Errorf("%w: node: %v", ErrInvalidMsg, err)
	}
	if !slices.Contains(capacityOutcomes, m.Outcome) {
		return fmt.Errorf("%w: outcome %q is not one of %v", ErrInvalidMsg, m.Outcome, capacityOutcomes)
	}
	if len(m.Reason) > 256 {
		return fmt.Errorf("%w: reason longer than 256 bytes", ErrInvalidMsg)
	}
	if m.Outcome != CapacityWrong && (m.Ops == 0 || m.Millis == 0) {
		return fmt.Errorf("%w: a %s report states the challenge's ops and the millis it took", ErrInvalidMsg, m.Outcome)
	}
	return nil
}

// measuredTFLOPSMilli is the rate ops in millis shows, in milli-TFLOPS (10^6 operations a
// millisecond), rounded down and at least 1.
func measuredTFLOPSMilli(ops, millis uint64) uint64 {
	return max(ops/max(millis, 1)/opsPerMilliPerTFLOPSMilli, 1)
}

// BillingTFLOPSMilli is the rate a node's work is billed at: its declared rate, or its
// proven rate when a capacity check has recorded a lower one.
func (n Node) BillingTFLOPSMilli() uint64 {
	if n.ProvenHeight != 0 {
		return min(n.Hardware.TFLOPSMilli, n.ProvenTFLOPSMilli)
	}
	return n.Hardware.TFLOPSMilli
}

func (c *execCtx) capacityReport(p Params, m *MsgCapacityReport) ([]Event, error) {
	if err := c.eligibleSigner(p); err != nil {
		return nil, err
	}
	n, ok, err := c.st.node(m.Node)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: node %s", ErrNotFound, m.Node)
	}
	ev := Event{Type: "capacity_reported", Attrs: []Attr{{"node", string(m.Node)}, {"validator", string(c.signer)}, {"outcome", m.Outcome}}}
	if m.Ops != 0 && m.Millis != 0 {
		ev.Attrs = append(ev.Attrs, Attr{"measured_tflops_milli", u(measuredTFLOPSMilli(m.Ops, m.Millis))})
	}
	outcome, measured := m.Outcome, uint64(0)
	if m.Outcome == CapacitySlow {
		measured = measuredTFLOPSMilli(m.Ops, m.Millis)
	}
	if outcome != CapacityProven {
		decided, rate, err := c.holdCapacityReport(m.Node, heldReport{Validator: c.signer, Outcome: outcome, Measured: measured, Height: c.blk.height})
		if err != nil {
			return nil, err
		}
		if decided == "" {
			ev.Attrs = append(ev.Attrs, Attr{"decided", "no: held until more than a third of the validators report"})
			return []Event{ev}, nil
		}
		outcome, measured = decided, rate // the held reports' verdict, at their rate
	}
	switch outcome {
	case CapacityProven:
		n.ProvenTFLOPSMilli, n.ProvenHeight = n.Hardware.TFLOPSMilli, c.blk.height
	case CapacitySlow:
		n.ProvenTFLOPSMilli, n.ProvenHeight = min(n.Hardware.TFLOPSMilli, measured), c.blk.height
		n.JobsFailed++
	case CapacityWrong:
		n.JobsFailed++
	}
	if n.ProvenTFLOPSMilli == 0 && n.ProvenHeight != 0 { // a node registered with no rate
		n.ProvenTFLOPSMilli = 1
	}
	if err := c.st.put(nodeKey(m.Node), n); err != nil {
		return nil, err
	}
	ev.Attrs = append(ev.Attrs, Attr{"proven_tflops_milli", u(n.ProvenTFLOPSMilli)})
	events := []Event{ev}
	if outcome != CapacityWrong {
		return events, nil
	}
	slashed, err := slash(c.st, &c.sp, m.Node, RoleNode, p.FraudSlashBP, p)
	if err != nil {
		return nil, err
	}
	if c.sp.Burned, err = add(c.sp.Burned, slashed); err != nil {
		return nil, err
	}
	return append(events, Event{Type: "slashed", Attrs: []Attr{{"account", string(m.Node)}, {"role", RoleNode}, {"amount", u(slashed)}, {"reason", "wrong capacity proof: " + m.Reason}}}), nil
}

// holdCapacityReport records r against node and decides once more than a third of the
// active validators have a report against it within CapacityReportWindow blocks: wrong
// when more than a third said wrong, slow otherwise, at rate, the lower median of the slow
// reports' measured rates (1 when none measured). It returns "" while undecided. Reports older than the window, or by validators no longer active, are
// dropped; a decision spends them all.
func (c *execCtx) holdCapacityReport(node keys.Address, r heldReport) (outcome string, rate uint64, err error) {
	if err := c.st.put(capacityReportKey(node, r.Validator), r); err != nil {
		return "", 0, err
	}
	vals, err := c.st.validators()
	if err != nil {
		return "", 0, err
	}
	var active []keys.Address
	for _, v := range vals {
		if v.Eligible(c.blk.params) {
			active = append(active, v.Address)
		}
	}
	prefix := []byte(fmt.Sprintf("%s%s/", prefixCapReport, node))
	var held []heldReport
	var stale [][]byte
	err = eachRecord(c.st.kv, prefix, func(h heldReport) bool {
		if c.blk.height-h.Height > CapacityReportWindow || !slices.Contains(active, h.Validator) {
			stale = append(stale, capacityReportKey(node, h.Validator))
		} else {
			held = append(held, h)
		}
		return true
	})
	if err != nil {
		return "", 0, err
	}
	if len(held)*3 <= len(active) {
		for _, k := range stale {
			if err := c.st.kv.Delete(k); err != nil {
				return "", 0, err
			}
		}
		return "", 0, nil
	}
	wrong := 0
	var rates []uint64
	for _, h := range held {
		if h.Outcome == CapacityWrong {
			wrong++
		} else if h.Measured > 0 {
			rates = append(rates, h.Measured)
		}
	}
	if err := eachKey(c.st.kv, prefix, func(k []byte) error { return c.st.kv.Delete(k) }); err != nil {
		return "", 0, err
	}
	if wrong*3 > len(active) {
		return CapacityWrong, 0, nil
	}
	rate = 1
	if len(rates) > 0 {
		slices.Sort(rates)
		rate = rates[(len(rates)-1)/2]
	}
	return CapacitySlow, rate, nil
}

// eachKey calls fn with a copy of every key under prefix, after the iteration (fn may
// delete them).
func eachKey(r kv, prefix []byte, fn func([]byte) error) error {
	var ks [][]byte
	if err := r.Iterate(prefix, func(k, _ []byte) bool {
		ks = append(ks, append([]byte(nil), k...))
		return true
	}); err != nil {
		return err
	}
	for _, k := range ks {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}
