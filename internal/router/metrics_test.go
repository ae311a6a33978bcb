package router

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/metrics"
	"github.com/omnisync/omnisync/internal/metrics/metricstest"
	"github.com/omnisync/omnisync/internal/protocol"
)

func TestMetricsCountPlacementsAndJobStates(t *testing.T) {
	chain := newFakeChain()
	fast, slow, val := newKey(t), newKey(t), newKey(t)
	chain.addNode(keys.AddressOfKey(fast), ledger.UomniPerOMNI, 150_000) // scores higher, and declines
	chain.addNode(keys.AddressOfKey(slow), ledger.UomniPerOMNI, 10_000)
	reg := metrics.NewRegistry()
	r, roots := startRouterWith(t, Options{Chain: chain, DispatchTimeout: 2 * time.Second, HeartbeatTTL: time.Minute, MaxAttempts: 3, Metrics: reg})

	before := metricstest.ScrapeGatherer(t, reg)
	before.Want(t, map[string]float64{
		`omnisync_router_placements_total{outcome="placed"}`: 0,
		`omnisync_router_queue_depth`:                        0,
		`omnisync_router_jobs{state="running"}`:              0,
		`omnisync_router_online{role="node"}`:                0,
	})

	scriptedNode(t, r, roots, fast, func(*nats.Conn, protocol.Dispatch) protocol.Ack {
		return protocol.Ack{Error: protocol.DeclineNoFreeGPU}
	})
	scriptedNode(t, r, roots, slow, func(*nats.Conn, protocol.Dispatch) protocol.Ack { return protocol.Ack{Accepted: true} })
	valID := string(keys.AddressOfKey(val))
	chain.mu.Lock()
	chain.vals = []ledger.Validator{{Address: keys.Address(valID)}}
	chain.mu.Unlock()
	scriptedParticipant(t, r, roots, val, protocol.Heartbeat{ID: valID, Role: protocol.RoleValidator}, protocol.VerifySubject(valID), func(*nats.Conn, []byte) []byte { return nil })
	waitFor(t, "nodes and validator online", func() bool {
		return len(r.online(protocol.RoleNode)) == 2 && len(r.online(protocol.RoleValidator)) == 1
	})

	id := submit(t, r, chain)
	waitFor(t, "the job running on the second node", func() bool { return jobHas(r, id, "running") })

	got := metricstest.ScrapeGatherer(t, reg)
	got.Want(t, map[string]float64{
		`omnisync_router_placements_total{outcome="placed"}`:    2, // the node that declined, then the other
		`omnisync_router_replacements_total{reason="declined"}`: 1,
		`omnisync_router_replacements_total{reason="failed"}`:   0,
		`omnisync_router_queue_depth`:                           0,
		`omnisync_router_jobs{state="running"}`:                 1,
		`omnisync_router_jobs{state="queued"}`:                  0,
		`omnisync_router_online{role="node"}`:                   2,
		`omnisync_router_online{role="validator"}`:              1,
	})
	placements := got[`omnisync_router_placements_total{outcome="placed"}`] + got[`omnisync_router_placements_total{outcome="busy"}`] +
		got[`omnisync_router_placements_total{outcome="infeasible"}`] + got[`omnisync_router_placements_total{outcome="error"}`]
	if n := got[`omnisync_router_placement_seconds_count`]; n != placements {
		t.Errorf("placement latency observed %v times, for %v placements", n, placements)
	}
}

func TestJobsWaitingForInputsAreQueued(t *testing.T) {
	chain := newFakeChain()
	reg := metrics.NewRegistry()
	r, _ := startRouterWith(t, Options{Chain: chain, HeartbeatTTL: time.Minute, Metrics: reg})
	req, _ := consumerJob(t, chain)
	req.InputData = nil // escrowed, but its inputs are still to be uploaded
	if _, err := r.SubmitJob(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	metricstest.ScrapeGatherer(t, reg).Want(t, map[string]float64{
		`omnisync_router_queue_depth`:                        1,
		`omnisync_router_jobs{state="awaiting_inputs"}`:      1,
		`omnisync_router_placements_total{outcome="placed"}`: 0,
	})
}
