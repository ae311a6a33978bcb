package router

import (
	"slices"
	"time"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/scheduler"
)

// placementIndex keeps the nodes the router may place on in scheduler indexes, so that a
// placement does not visit every node: Index.Place answers exactly what the full scan of
// the same snapshot answers. The snapshot is what place used to build for each decision:
// the registered, active nodes (placementView) with a node heartbeat within HeartbeatTTL,
// each with its GPUs free as freeLocked counts them. Whatever changes one of those inputs
// updates the node in the indexes, under r.mu, which guards all of this:
//
//   - a heartbeat (onHeartbeat): the node's GPUs, whether it runs containers, and that it
//     is online; nodes whose last heartbeat is older than HeartbeatTTL are taken out by
//     expireLocked, which reads the heartbeats in the order they came;
//   - a new placement view from the chain (syncChainLocked): price, hardware, record,
//     status, nodes registered or gone;
//   - a reservation, its release, a decline, or the peers' leases: the free GPUs.
//
// The router's weights are the indexes' weights: when the chain changes them, the indexes
// are built again.
type placementIndex struct {
	gen     uint64 // the placement view it reflects
	weights scheduler.Weights
	// registered holds the chain's active nodes as the scheduler sees them, FreeGPUs unset.
	registered map[string]scheduler.Node
	all        *scheduler.Index // the registered nodes online now
	containers *scheduler.Index // those of them whose heartbeat says they run containers
	heard      []heartbeatAt    // node heartbeats in the order they arrived, for expireLocked
	// scratch is the placements' working space: one serves both indexes, since the
	// router places under r.mu, one decision at a time.
	scratch scheduler.Scratch
	// idle and held are the all-busy check's working space (idleLocked, fitsHeld),
	// reused likewise.
	idle map[string]int
	held []scheduler.Node
}

type heartbeatAt struct {
	id string
	at time.Time
}

// placementSnapshot is the chain's side of placement, read at most once per
// placementViewTTL; gen counts the reads that changed it.
type placementSnapshot struct {
	at      time.Time
	gen     uint64
	nodes   []ledger.Node
	weights scheduler.Weights
	// changed, when not nil, are the nodes that differ from generation base's list: an
	// index at base syncs to this view by them alone (syncChainLocked).
	changed []ledger.Node
	base    uint64
}

// schedulerNode is a registered node as placement scores it, FreeGPUs unset. Its compute
// is the rate the chain bills it at: the declared rate, or less where a capacity check
// found less (ledger.Node.BillingTFLOPSMilli), so overstating its hardware wins a node no
// placement once a validator has timed it.
func schedulerNode(n ledger.Node) scheduler.Node {
	id := string(n.Address)
	return scheduler.Node{
		ID: id, Operator: id, GPUs: int(n.Hardware.GPUs),
		VRAMMiB: n.Hardware.VRAMMiB, TFLOPSMilli: n.BillingTFLOPSMilli(), Region: n.Hardware.Region,
		Location:      scheduler.Location{LatE6: n.Hardware.LatE6, LonE6: n.Hardware.LonE6},
		ReliabilityBP: reliabilityBP(n), PricePerHourUomni: n.PricePerHour,
	}
}

// freeLocked counts node id's GPUs free for placement: its heartbeat's GPUs less what
// this router's attempts and its peers' hold. Heartbeats lag, and counting from them
// booked one GPU to several jobs, which the node then declined; a node that declined for
// want of a GPU has none free until it heartbeats again.
func (r *Router) freeLocked(id string) int {
	free := r.seen[id].GPUs - r.reserved[id] - r.peerHeld[id]
	if at, ok := r.declined[id]; ok {
		if !r.when[id].After(at) {
			return 0 // it said it was full; believe it until it says otherwise
		}
		delete(r.declined, id)
	}
	return free
}

// indexLocked brings the placement indexes up to view and to the clock, building them
// the first time and whenever the weights change, and returns the one a job of this kind
// is placed with.
func (r *Router) indexLocked(view placementSnapshot, containers bool) (*scheduler.Index, error) {
	px := r.px
	if px == nil || px.weights != view.weights {
		var err error
		if px, err = r.buildIndexLocked(view); err != nil {
			return nil, err
		}
		r.px = px
	} else if view.gen > px.gen {
		r.syncChainLocked(view)
	}
	r.expireLocked(time.Now())
	if containers {
		return px.containers, nil
	}
	return px.all, nil
}

// buildIndexLocked indexes the nodes of view, and takes those that are not online now
// out again: each keeps its slot, so that its heartbeat brings it back cheaply. Adding a
// node the index has no slot for rebuilds part of it, and a router that started before
// its nodes connected rebuilt it for every one (100,000 nodes: minutes of CPU).
func (r *Router) buildIndexLocked(view placementSnapshot) (*placementIndex, error) {
	px := &placementIndex{gen: view.gen, weights: view.weights, registered: make(map[string]scheduler.Node, len(view.nodes))}
	all := make([]scheduler.Node, 0, len(view.nodes))
	for _, n := range view.nodes {
		if n.Status == ledger.NodeActive {
			sn := schedulerNode(n)
			px.registered[sn.ID] = sn
			sn.FreeGPUs = r.freeLocked(sn.ID)
			all = append(all, sn)
		}
	}
	for id, hb := range r.seen {
		if hb.Role == protocol.RoleNode {
			px.heard = append(px.heard, heartbeatAt{id, r.when[id]})
		}
	}
	slices.SortFunc(px.heard, func(a, b heartbeatAt) int { return a.at.Compare(b.at) })
	var err error
	if px.all, err = scheduler.NewIndex(all, view.weights); err != nil {
		return nil, err
	}
	if px.containers, err = scheduler.NewIndex(all, view.weights); err != nil {
		return nil, err
	}
	for _, n := range all {
		hb, heard := r.seen[n.ID]
		if !heard || hb.Role != protocol.RoleNode || time.Since(r.when[n.ID]) > r.opts.HeartbeatTTL {
			px.all.Remove(n.ID)
			px.containers.Remove(n.ID)
		} else if hb.Containers == "" {
			px.containers.Remove(n.ID)
		}
	}
	return px, nil
}

// syncChainLocked applies a newer placement view: the nodes whose record changed, that
// registered, or that are no longer active. An index at the view's base generation
// looks at the view's changed nodes alone, any other at every node.
func (r *Router) syncChainLocked(view placementSnapshot) {
	px := r.px
	if view.changed != nil && px.gen == view.base {
		px.gen = view.gen
		for _, ln := range view.changed {
			r.syncNodeLocked(ln)
		}
		return
	}
	px.gen = view.gen
	active := make(map[string]bool, len(view.nodes))
	for _, ln := range view.nodes {
		if r.syncNodeLocked(ln) {
			active[string(ln.Address)] = true
		}
	}
	for id := range px.registered {
		if !active[id] {
			delete(px.registered, id)
			r.indexNodeLocked(id)
		}
	}
}

// syncNodeLocked brings the index up to one node's record, and reports whether the node
// is active.
func (r *Router) syncNodeLocked(ln ledger.Node) bool {
	px := r.px
	n := schedulerNode(ln)
	if ln.Status != ledger.NodeActive {
		if _, ok := px.registered[n.ID]; ok {
			delete(px.registered, n.ID)
			r.indexNodeLocked(n.ID)
		}
		return false
	}
	if old, ok := px.registered[n.ID]; !ok || old != n {
		px.registered[n.ID] = n
		r.indexNodeLocked(n.ID)
	}
	return true
}

// indexNodeLocked puts node id in the indexes it belongs in now, with what it has free,
// and takes it out of the others; waiting jobs are woken if its free GPUs rose.
func (r *Router) indexNodeLocked(id string) {
	px := r.px
	if px == nil {
		return
	}
	before := px.freeOf(id)
	defer func() { r.freeRoseLocked(before, px.freeOf(id)) }()
	n, registered := px.registered[id]
	hb, heard := r.seen[id]
	if !registered || !heard || hb.Role != protocol.RoleNode || time.Since(r.when[id]) > r.opts.HeartbeatTTL {
		px.all.Remove(id)
		px.containers.Remove(id)
		return
	}
	n.FreeGPUs = r.freeLocked(id)
	setIfChanged(px.all, n)
	if hb.Containers != "" {
		setIfChanged(px.containers, n)
	} else {
		px.containers.Remove(id)
	}
}

func setIfChanged(x *scheduler.Index, n scheduler.Node) {
	if cur, ok := x.Node(n.ID); !ok || cur != n {
		x.Set(n)
	}
}

// freeChangedLocked updates node id's free GPUs after a reservation, its release, a
// decline or a peer's lease changed them, and wakes waiting jobs if they rose.
func (r *Router) freeChangedLocked(id string) {
	if px := r.px; px != nil {
		before := px.freeOf(id)
		free := r.freeLocked(id)
		px.all.SetFreeGPUs(id, free)
		px.containers.SetFreeGPUs(id, free)
		r.freeRoseLocked(before, px.freeOf(id))
	}
}

// freeOf is node id's free GPUs as the index of all nodes holds them: 0 if it is not
// there (offline, unregistered).
func (px *placementIndex) freeOf(id string) int {
	n, ok := px.all.Node(id)
	if !ok {
		return 0
	}
	return n.FreeGPUs
}

// heardLocked indexes a node's heartbeat, which r.seen and r.when hold now.
func (r *Router) heardLocked(id string) {
	px := r.px
	if px == nil {
		return
	}
	if r.seen[id].Role == protocol.RoleNode {
		px.heard = append(px.heard, heartbeatAt{id, r.when[id]})
		if _, known := px.registered[id]; !known {
			r.viewStale.Store(true) // it registered since the view was read
		}
	}
	r.indexNodeLocked(id)
	r.expireLocked(r.when[id])
}

// expireLocked takes out of the indexes the nodes whose last heartbeat is older than
// HeartbeatTTL at now. Heartbeats are stamped under r.mu, so px.heard is in time order.
func (r *Router) expireLocked(now time.Time) {
	px := r.px
	i := 0
	for ; i < len(px.heard) && now.Sub(px.heard[i].at) > r.opts.HeartbeatTTL; i++ {
		if e := px.heard[i]; r.when[e.id].Equal(e.at) {
			px.all.Remove(e.id)
			px.containers.Remove(e.id)
		}
	}
	px.heard = px.heard[i:]
}
