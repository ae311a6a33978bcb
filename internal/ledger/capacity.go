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
//     burns: the report is one validator's, so none of it rewards the reporter.
const (
	CapacityProven = "proven"
	CapacitySlow   = "slow"
	CapacityWrong  = "wrong"
)

var capacityOutcomes = []string{CapacityProven, CapacitySlow, CapacityWrong}

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
	if v, ok, err := c.st.validator(c.signer); err != nil || !ok || v.Power() == 0 {
		return nil, fmt.Errorf("%w: %s is not an active validator", ErrUnauthorized, c.signer)
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
	switch m.Outcome {
	case CapacityProven:
		n.ProvenTFLOPSMilli, n.ProvenHeight = n.Hardware.TFLOPSMilli, c.blk.height
	case CapacitySlow:
		n.ProvenTFLOPSMilli, n.ProvenHeight = min(n.Hardware.TFLOPSMilli, measuredTFLOPSMilli(m.Ops, m.Millis)), c.blk.height
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
	if m.Outcome != CapacityWrong {
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
