package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/omnisync/omnisync/internal/keys"
)

// Several routers share the work through one replicated JetStream (Options.Cluster).
// Each holds a lease: a key in leasesBucket that it rewrites every LeaseTTL/3 and that
// the bucket expires LeaseTTL after the last write. A job belongs to the router named
// in its record (jobRecord.Owner), which alone runs it; when an owner's lease lapses,
// the others claim its jobs, one each, by conditional writes (adoptJobs).
//
// A router that cannot renew its lease for 2/3 of LeaseTTL (cut off from the cluster's
// majority) stops acting on its jobs before anyone may claim them, and takes up again
// those still its own once it can renew. A second process with the same key finds the
// lease rewritten under it and stops, rather than run the same jobs twice.

// leasesBucket holds one key per live router.
const leasesBucket = "router_leases"

// DefaultLeaseTTL is how long a router that stopped renewing keeps its jobs. It must
// outlast a JetStream leader election (several seconds), or the survivors of a dead
// router's stream leader would leave their own jobs while the stream elects anew.
const DefaultLeaseTTL = 15 * time.Second

// lease is a router's entry in leasesBucket.
type lease struct {
	Router   keys.Address   `json:"router"`
	Instance string         `json:"instance"`           // this process; a restart is a new instance
	Reserved map[string]int `json:"reserved,omitempty"` // node id → GPUs this router's attempts hold
}

func (r *Router) openLeases(ctx context.Context) (err error) {
	r.leases, err = r.openBucket(ctx, jetstream.KeyValueConfig{
		Bucket: leasesBucket, Description: "OmniRouter leases: one key per live router", History: 1, TTL: r.opts.LeaseTTL,
	})
	if err != nil {
		return err
	}
	r.instance = nuid.Next()
	r.leaseRev, err = r.leases.Put(ctx, string(r.id), r.leaseRecord())
	return err
}

func (r *Router) leaseRecord() []byte {
	r.mu.Lock()
	reserved := make(map[string]int, len(r.reserved))
	for n, g := range r.reserved {
		reserved[n] = g
	}
	r.mu.Unlock()
	b, _ := json.Marshal(lease{Router: r.id, Instance: r.instance, Reserved: reserved})
	return b
}

// keepLease renews the lease every LeaseTTL/3 until ctx ends, fencing this router off
// its jobs while it cannot, and takes over the jobs of any router whose lease lapses.
func (r *Router) keepLease(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.LeaseTTL / 3)
	defer t.Stop()
	renewed := time.Now()
	fenced := false
	known, _ := r.liveRouters(ctx)
	if known == nil {
		known = map[keys.Address]bool{}
	}
	for renewal := 0; ; renewal++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.renewLease(ctx)
		switch {
		case errors.Is(err, errDuplicate):
			r.log.Error("another process runs this router's key; this one stops taking and running jobs", "router", r.id)
			r.fence()
			r.duplicate.Store(true)
			return
		case err != nil:
			r.log.Warn("router lease not renewed", "err", err, "for", time.Since(renewed).Round(time.Millisecond))
			if !fenced && time.Since(renewed) > r.opts.LeaseTTL*2/3 {
				r.log.Error("cut off from the cluster for too long: leaving this router's jobs to its peers until it is back")
				r.fence()
				fenced = true
				r.fenced.Store(true)
			}
			continue
		}
		renewed = time.Now()
		r.fenced.Store(false)
		peers, err := r.readLeases(ctx)
		if err != nil {
			continue
		}
		live := r.setPeers(peers)
		// Scan the store when a lease lapsed or this router was cut off, and every
		// rescanEvery renewals besides: a record unreadable at a scan is taken up later.
		lapsed := fenced || renewal%rescanEvery == 0
		for id := range known {
			lapsed = lapsed || !live[id]
		}
		known, fenced = live, false
		if lapsed {
			if err := r.adoptJobs(ctx); err != nil {
				r.log.Warn("taking over jobs failed; trying again at the next renewal", "err", err)
				known = nil // so the next renewal scans again
			}
		}
	}
}

// Health is what GET /v1/health adds for a router: its lease ("held", or "not renewed"
// while it is cut off, or "duplicate" when another process runs its key), whether its
// JetStream is current ("ok", or what is still catching up) and, in a cluster, how many
// peer servers it is routed to.
func (r *Router) Health() map[string]string {
	h := map[string]string{"lease": "held"}
	switch {
	case r.duplicate.Load():
		h["lease"] = "duplicate"
	case r.fenced.Load():
		h["lease"] = "not renewed"
	}
	if r.opts.Cluster != nil {
		h["cluster_peers"] = strconv.Itoa(len(r.Peers()))
	}
	h["jetstream"] = r.nats.JetStreamHealth()
	return h
}

// ClusterAddr is where the router's cluster peers route to it ("" alone).
func (r *Router) ClusterAddr() string { return r.nats.ClusterAddr() }

// Peers names the peer routers' servers this router is routed to now.
func (r *Router) Peers() []string { return r.nats.Peers() }

// rescanEvery is how many lease renewals pass between scans of the job store that no
// lapsed lease asked for.
const rescanEvery = 6

// errDuplicate means another process rewrote this router's lease.
var errDuplicate = errors.New("lease held by another process with the same key")

// renewLease rewrites the lease if it is still the one this process wrote; when the
// lease lapsed meanwhile (this router was cut off), it is made afresh.
func (r *Router) renewLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.LeaseTTL/3)
	defer cancel()
	rev, err := r.leases.Update(ctx, string(r.id), r.leaseRecord(), r.leaseRev)
	if errors.Is(err, jetstream.ErrKeyExists) {
		entry, gerr := r.leases.Get(ctx, string(r.id))
		if gerr == nil {
			var l lease
			if json.Unmarshal(entry.Value(), &l) == nil && l.Instance != r.instance {
				return errDuplicate
			}
		}
		if gerr != nil && !errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return gerr
		}
		rev, err = r.leases.Create(ctx, string(r.id), r.leaseRecord())
	}
	if err != nil {
		return err
	}
	r.leaseRev = rev
	return nil
}

// liveRouters reads every live router's lease; this router is always live to itself.
func (r *Router) liveRouters(ctx context.Context) (map[keys.Address]bool, error) {
	peers, err := r.readLeases(ctx)
	if err != nil {
		return nil, err
	}
	return r.liveOf(peers), nil
}

// liveOf is the routers whose leases these are, and this one.
func (r *Router) liveOf(leases []lease) map[keys.Address]bool {
	live := make(map[keys.Address]bool, len(leases)+1)
	for _, l := range leases {
		live[l.Router] = true
	}
	live[r.id] = true
	return live
}

// readLeases reads the live routers' leases. A lease that lapsed is not among them; one
// that could not be read makes the whole read fail, so that no caller takes a peer whose
// lease it could not read for one whose lease lapsed.
func (r *Router) readLeases(ctx context.Context) ([]lease, error) {
	lister, err := r.leases.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []lease
	for key := range lister.Keys() {
		entry, err := r.leases.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired between the listing and the read
		}
		if err != nil {
			// A lease that could not be read is not a lease that lapsed: taking it
			// for one would have this router claim the jobs of a peer that is alive.
			_ = lister.Stop()
			return nil, fmt.Errorf("read router %s's lease: %w", keys.Address(key).Short(), err)
		}
		var l lease
		if json.Unmarshal(entry.Value(), &l) == nil && l.Router == keys.Address(key) {
			out = append(out, l)
		}
	}
	return out, nil
}

// setPeers remembers what the other live routers hold on each node, as their leases
// said at their last renewal, so placement does not count a GPU free that a peer's
// attempt holds (the node would decline it: it arbitrates what two routers book within
// one renewal). It returns the live routers, this one included.
func (r *Router) setPeers(leases []lease) map[keys.Address]bool {
	held := map[string]int{}
	for _, l := range leases {
		if l.Router == r.id {
			continue
		}
		for n, g := range l.Reserved {
			held[n] += g
		}
	}
	r.mu.Lock()
	old := r.peerHeld
	r.peerHeld = held
	for n := range old {
		r.freeChangedLocked(n)
	}
	for n := range held {
		r.freeChangedLocked(n)
	}
	r.mu.Unlock()
	return r.liveOf(leases)
}

// fence stops every job lifecycle of this router without releasing or finishing
// anything and forgets the jobs: their owner, this router or a peer, takes them up from
// the store.
func (r *Router) fence() {
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.jobs))
	for _, j := range r.jobs {
		jobs = append(jobs, j)
		r.dropLocked(j)
	}
	r.mu.Unlock()
	for _, j := range jobs {
		j.cancel()
	}
}
