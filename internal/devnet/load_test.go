package devnet

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// TestManyConsumersEveryJobSettles is the reduced soak: many consumers submitting back to
// back to three single-GPU nodes, more jobs than GPUs at every moment. Every job must
// settle: none may be given up on while nodes are merely busy.
func TestManyConsumersEveryJobSettles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	d := startDevnet(t, t.TempDir(), nil)
	consumers, err := d.FundConsumers(ctx, 8, 10)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.RunLoad(ctx, consumers, 4, 64, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d jobs in %s: %v", res.Submitted, res.Took.Round(time.Millisecond), res.ByStatus)
	if res.Submitted != 32 || res.ByStatus[api.StatusSettled] != res.Submitted {
		t.Fatalf("%d of %d jobs settled; the others: %v", res.ByStatus[api.StatusSettled], res.Submitted, res.Unsettled)
	}
	// The same consumers at a steady 8 jobs a second, Async: two jobs each take a second
	// to submit, and settle as well.
	paced, err := d.RunLoadPaced(ctx, consumers, 2, 64, 8, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if paced.Submitted != 16 || paced.ByStatus[api.StatusSettled] != paced.Submitted || paced.Took < time.Second {
		t.Fatalf("paced: %d of %d jobs settled in %s (want all, in a second or more); the others: %v",
			paced.ByStatus[api.StatusSettled], paced.Submitted, paced.Took, paced.Unsettled)
	}
	if len(paced.SettledAt) != paced.Submitted || !paced.LastSubmit.After(paced.Start.Add(time.Second/2)) {
		t.Fatalf("paced: %d settle times for %d jobs, last submitted %v after the start; want one each, and the last about a second in",
			len(paced.SettledAt), paced.Submitted, paced.LastSubmit.Sub(paced.Start))
	}
	for _, l := range paced.Latencies {
		if l <= 0 || l > 60*time.Second {
			t.Fatalf("paced latencies %v: want each submit → settled", paced.Latencies)
		}
	}
	// Through a router that answers 503 to every submission (cut off from its cluster),
	// the consumers send their jobs to the router they follow them through: none is lost
	// to the refusal, as none would be to a consumer that tries another router.
	cutOff, refused := refusingRouter(t, d, -1, "")
	via, err := RunLoadVia(ctx, api.NewClient(cutOff), api.NewClient(d.RESTURL()), ChainID, consumers[:2], 2, 64, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if via.Submitted != 4 || via.ByStatus[api.StatusSettled] != 4 || refused.Load() == 0 {
		t.Fatalf("through a router that refuses with 503: %d of %d jobs settled, %d refused there; the others: %v",
			via.ByStatus[api.StatusSettled], via.Submitted, refused.Load(), via.Unsettled)
	}
	// With no other router, a 503 that says when to come back is waited out.
	failingOver, refused := refusingRouter(t, d, 2, "1")
	alone, err := RunLoad(ctx, api.NewClient(failingOver), ChainID, consumers[:1], 2, 64, 120*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if alone.Submitted != 2 || alone.ByStatus[api.StatusSettled] != 2 || refused.Load() != 2 {
		t.Fatalf("through a router that refuses twice with 503 and Retry-After: %d of %d jobs settled, %d refused; the others: %v",
			alone.ByStatus[api.StatusSettled], alone.Submitted, refused.Load(), alone.Unsettled)
	}
}

// refusingRouter is the devnet's REST API behind a proxy that answers its first n job
// submissions (every one, n < 0) with 503 and, unless empty, retryAfter.
func refusingRouter(t *testing.T, d *Devnet, n int32, retryAfter string) (string, *atomic.Int32) {
	t.Helper()
	var refused atomic.Int32
	rest, err := url.Parse(d.RESTURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(rest)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/v1/jobs") && (n < 0 || refused.Load() < n) {
			refused.Add(1)
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"service unavailable: this router is cut off from its cluster","code":"unavailable"}` + "\n"))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &refused
}

// A job's latency runs to its settled event, not to whenever its consumer looked: a
// consumer following its jobs one after another is not charged for the wait.
func TestSettledAfterReadsTheSettledEvent(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	j := api.Job{Status: api.StatusSettled, Events: []api.Event{
		{Time: at.Add(300 * time.Millisecond), Stage: "placed"},
		{Time: at.Add(1200 * time.Millisecond), Stage: api.StatusSettled},
	}}
	if got := settledAfter(j, at); got != 1200*time.Millisecond {
		t.Fatalf("settledAfter = %s, want 1.2s (the settled event)", got)
	}
	j.Events = j.Events[:1] // no settled event: to now
	if got := settledAfter(j, time.Now().Add(-time.Hour)); got < time.Hour {
		t.Fatalf("settledAfter without a settled event = %s, want the time since submission", got)
	}
}

// The steady rate counts only the jobs that settled between the warmup and the last
// submission, over that window: not the start, before the first jobs settle, nor the drain.
func TestSteadyPerSecondLeavesOutStartAndDrain(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	res := LoadResult{Start: t0, LastSubmit: t0.Add(12 * time.Second)}
	for ms := 0; ms < 14_000; ms += 10 { // 100 a second from the start, through the drain
		res.SettledAt = append(res.SettledAt, t0.Add(time.Duration(ms)*time.Millisecond))
	}
	res.SettledAt = append(res.SettledAt, t0.Add(-time.Second)) // before the window: not counted
	if got := res.SteadyPerSecond(2 * time.Second); got < 100 || got > 100.2 {
		t.Fatalf("steady rate %.2f/s, want 100 (1,001 jobs from 2 s to 12 s in)", got)
	}
	if got := res.SteadyPerSecond(11500 * time.Millisecond); got != 0 {
		t.Fatalf("a window under a second: %.2f/s, want 0", got)
	}
}
