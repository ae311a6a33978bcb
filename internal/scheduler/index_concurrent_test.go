package scheduler

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestIndexConcurrentPlace places the same jobs from several goroutines at
// once against a fixed snapshot, through Place and through PlaceWith with
// each goroutine's own Scratch; every answer must be the scan's. Under
// -race it also shows that placing only reads the index.
func TestIndexConcurrentPlace(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 2))
	for _, kind := range snapshotKinds {
		t.Run(kind.name, func(t *testing.T) {
			nodes := kind.nodes(rng, 2000)
			x, err := NewIndex(nodes, DefaultWeights())
			if err != nil {
				t.Fatal(err)
			}
			jobs := make([]Job, scaled(200))
			for i := range jobs {
				jobs[i] = kind.job(rng, nodes)
			}
			type answer struct {
				plan Plan
				err  error
			}
			want := make([]answer, len(jobs))
			for i, job := range jobs {
				want[i].plan, want[i].err = Place(job, nodes, x.w)
			}
			const goroutines = 4
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					var scratch Scratch
					for k := range jobs {
						i := (k + g*len(jobs)/goroutines) % len(jobs) // each from its own start
						var got answer
						if k%2 == 0 {
							got.plan, got.err = x.PlaceWith(&scratch, jobs[i])
						} else {
							got.plan, got.err = x.Place(jobs[i])
						}
						if diff := samePlan(got.plan, got.err, want[i].plan, want[i].err); diff != "" {
							t.Errorf("goroutine %d, job %d: %s", g, i, diff)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestIndexPlaceUnderReadLock runs BenchmarkIndexReserveParallel's
// protocol with a check at every reservation: goroutines place under a
// read lock and reserve under the write lock, after re-placing when the
// reservations made in between could change the answer (answerHolds). The
// plan each reserves must be what the scan answers then.
func TestIndexPlaceUnderReadLock(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 3))
	kind := snapshotKinds[1] // market: jobs that mostly place, and nodes that fill up
	nodes := kind.nodes(rng, 300)
	x, err := NewIndex(nodes, DefaultWeights())
	if err != nil {
		t.Fatal(err)
	}
	jobs := make([]Job, scaled(400))
	for i := range jobs {
		jobs[i] = kind.job(rng, nodes)
	}
	var (
		mu                       sync.RWMutex
		book                     = reservations{keep: 20}
		kept, replaced, reserved int
	)
	const goroutines = 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			var scratch Scratch
			for i := g; i < len(jobs); i += goroutines {
				job := jobs[i]
				mu.RLock()
				seen := len(book.log)
				plan, err := x.PlaceWith(&scratch, job)
				mu.RUnlock()
				if err != nil {
					continue
				}
				mu.Lock()
				if answerHolds(x, &job, plan, scratch.q.fastest, book.log[seen:]) {
					kept += min(len(book.log)-seen, 1)
				} else {
					replaced++
					plan, err = x.PlaceWith(&scratch, job)
				}
				want, wantErr := Place(job, x.Snapshot(), x.w)
				if diff := samePlan(plan, err, want, wantErr); diff != "" {
					t.Errorf("job %d, reserving after %d changes: %s", i, len(book.log)-seen, diff)
				}
				if err == nil {
					book.reserve(x, job, plan)
					reserved++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d reserved: %d kept through others' reservations, %d re-placed", reserved, kept, replaced)
	if reserved < len(jobs)/4 {
		t.Errorf("only %d of %d jobs reserved: the test does not cover reservations", reserved, len(jobs))
	}
}

// reservations is the router's book in the reservation benchmarks: the
// GPUs held by the last keep placements (the oldest released as a new one
// is made), and every change to free GPUs, in order, for answerHolds.
type reservations struct {
	keep int
	held []hold
	log  []freeChange
}

type hold struct {
	ids  []string
	gpus int
}

// freeChange is one SetFreeGPUs: node id's free GPUs went from old to new.
type freeChange struct {
	id       string
	old, new int
}

// reserve takes job's GPUs on the nodes of plan and releases the oldest
// hold beyond keep.
func (r *reservations) reserve(x *Index, job Job, plan Plan) {
	h := hold{gpus: job.GPUs}
	for _, p := range plan.Placements {
		r.add(x, p.NodeID, -job.GPUs)
		h.ids = append(h.ids, p.NodeID)
	}
	if r.held = append(r.held, h); len(r.held) > r.keep {
		for _, id := range r.held[0].ids {
			r.add(x, id, r.held[0].gpus)
		}
		r.held = r.held[1:]
	}
}

func (r *reservations) add(x *Index, id string, gpus int) {
	n, ok := x.Node(id)
	if !ok {
		panic(fmt.Sprintf("reserving on %q, which is not in the snapshot", id))
	}
	x.SetFreeGPUs(id, n.FreeGPUs+gpus)
	r.log = append(r.log, freeChange{id, n.FreeGPUs, n.FreeGPUs + gpus})
}

// answerHolds reports whether plan, which Place answered for job (without
// an error, the fastest feasible node having fastest TFLOPS) before
// changes were made to free GPUs and nothing else, is still its answer.
// Free GPUs decide only feasibility, never a score, so a change matters
// only where it makes a node that passes the job's other checks feasible,
// or infeasible. The answer stands when every such node that leaves the
// feasible set was not placed and is slower than the fastest, or no faster
// than a placed node (which stays, so the compute score's base stays the
// same), and every node that joins it is no faster than the fastest and
// scores below the last placement (or ties it with a later ID): then each
// operator's best, and the best Replicas of those, are the same.
func answerHolds(x *Index, job *Job, plan Plan, fastest uint64, changes []freeChange) bool {
	if len(changes) == 0 {
		return true
	}
	var fastestPlaced uint64
	for _, p := range plan.Placements {
		n, _ := x.Node(p.NodeID)
		fastestPlaced = max(fastestPlaced, n.TFLOPSMilli)
	}
	last := plan.Placements[len(plan.Placements)-1]
	req := request{job: job, exclude: slices.Sorted(slices.Values(job.Exclude))}
	checkers := feasibilityCheckers()
	for _, c := range changes {
		before, after := c.old >= job.GPUs, c.new >= job.GPUs
		if before == after {
			continue
		}
		n, _ := x.Node(c.id)
		n.FreeGPUs = max(c.old, c.new)
		cand := candidate{node: &n}
		if slices.ContainsFunc(checkers, func(check checker) bool { return check(&req, &cand) != feasibleNode }) {
			continue // infeasible for the job either way
		}
		if !after {
			placed := slices.ContainsFunc(plan.Placements, func(p Placement) bool { return p.NodeID == c.id })
			if placed || (n.TFLOPSMilli >= fastest && n.TFLOPSMilli > fastestPlaced) {
				return false
			}
			continue
		}
		if n.TFLOPSMilli > fastest {
			return false
		}
		total := score(job, &n, feasible{latency: cand.latency, latencyKnown: cand.latencyKnown}, fastest, x.w).Total
		if total > last.Scores.Total || (total == last.Scores.Total && n.ID < last.NodeID) {
			return false
		}
	}
	return true
}

// TestAnswerHolds checks answerHolds against the scan: after random
// reservations and releases, a plan it keeps must be the scan's answer.
func TestAnswerHolds(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 4))
	held, dropped := 0, 0
	for trial := range 40 { // small scans: quick even under -race
		kind := snapshotKinds[trial%len(snapshotKinds)]
		nodes := kind.nodes(rng, 50+rng.IntN(400))
		x, err := NewIndex(nodes, DefaultWeights())
		if err != nil {
			t.Fatal(err)
		}
		var book reservations
		var scratch Scratch
		for range 50 {
			job := kind.job(rng, nodes)
			plan, err := x.PlaceWith(&scratch, job)
			if err != nil {
				continue
			}
			seen := len(book.log)
			for range 1 + rng.IntN(20) {
				n := nodes[rng.IntN(len(nodes))]
				book.add(x, n.ID, rng.IntN(5)-2)
			}
			if !answerHolds(x, &job, plan, scratch.q.fastest, book.log[seen:]) {
				dropped++
				continue
			}
			held++
			want, wantErr := Place(job, x.Snapshot(), x.w)
			if diff := samePlan(plan, nil, want, wantErr); diff != "" {
				t.Fatalf("trial %d: a plan kept after %v:\n%s", trial, book.log[seen:], diff)
			}
		}
	}
	t.Logf("%d plans kept, %d dropped", held, dropped)
	if held < 200 || dropped < 20 {
		t.Errorf("%d plans kept and %d dropped: the test does not cover both", held, dropped)
	}
}
