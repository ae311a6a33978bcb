package router

import (
	"context"
	"slices"
	"time"

	"github.com/omnisync/omnisync/api"
)

// statsWindow is how far back Stats counts finished jobs and placements.
const statsWindow = 10 * time.Minute

// Stats reports this router's recent work from the jobs it holds: its jobs by status,
// how many finished in the last statsWindow (settled ones per minute), how many wait for
// a node, and how long placement took (from escrow to the first node chosen). Finished
// jobs count for as long as the router remembers them (FinishedRetention).
func (r *Router) Stats(ctx context.Context) (api.RouterStats, error) {
	now := r.opts.Now()
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.jobs))
	for _, j := range r.jobs {
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	st := api.RouterStats{Router: string(r.id), WindowSeconds: int64(statsWindow / time.Second), Jobs: map[string]int{}}
	var placing []time.Duration
	for _, j := range jobs {
		v, err := r.views().Job(ctx, j.id)
		if err != nil {
			continue
		}
		st.Jobs[v.Status]++
		j.mu.Lock()
		finished, events, running := j.finished, slices.Clone(j.events), j.running
		j.mu.Unlock()
		var escrowed, placed time.Time
		for _, e := range events {
			switch {
			case e.Stage == "escrowed":
				escrowed = e.Time
			case e.Stage == "placed" && placed.IsZero():
				placed = e.Time
			}
		}
		// The chain may show a job decided a moment before this router marks it finished.
		recent := finished.IsZero() || now.Sub(finished) <= statsWindow
		switch final := api.Final(v.Status); {
		case final && recent:
			st.FinishedInWindow++
			if v.Status == api.StatusSettled {
				st.SettledInWindow++
			}
		case !final && placed.IsZero():
			st.Waiting++
		case !final && running:
			st.Running++
		}
		if !escrowed.IsZero() && !placed.IsZero() && now.Sub(placed) <= statsWindow {
			placing = append(placing, placed.Sub(escrowed))
		}
	}
	st.SettledPerMinute = float64(st.SettledInWindow) / statsWindow.Minutes()
	if len(placing) > 0 {
		slices.Sort(placing)
		st.Placements = len(placing)
		st.PlacementP50Ms = float64(placing[len(placing)/2].Microseconds()) / 1000
		st.PlacementP90Ms = float64(placing[len(placing)*9/10].Microseconds()) / 1000
	}
	return st, nil
}
