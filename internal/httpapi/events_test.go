package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// lifecycle is the order the fake is driven through.
var lifecycle = []string{api.StatusQueued, api.StatusAssigned, api.StatusRunning, api.StatusComputed, api.StatusSettled}

// readEvent reads one server-sent event, skipping comments.
func readEvent(br *bufio.Reader) (name, data string, err error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func openEvents(t *testing.T, ctx context.Context, url string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestJobEventsFollowLifecycle(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusQueued})
	srv := httptest.NewServer(newTestHandler(t, svc))
	t.Cleanup(srv.Close) // before openEvents registers closing the body, so it runs after

	resp := openEvents(t, t.Context(), srv.URL+"/v1/jobs/j1/events")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	br := bufio.NewReader(resp.Body)
	for i, want := range lifecycle {
		name, data, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var job api.Job
		if name != api.EventJob || json.Unmarshal([]byte(data), &job) != nil || job.Status != want {
			t.Fatalf("event %d = %s %s, want a job %s", i, name, data, want)
		}
		if i+1 < len(lifecycle) {
			svc.setStatus("j1", lifecycle[i+1]) // only after reading, so each state is seen
		}
	}
	if _, _, err := readEvent(br); err != io.EOF {
		t.Fatalf("after the final status: %v, want the stream to end", err)
	}
}

func TestJobEventsUnknownJob(t *testing.T) {
	rec := serve(newTestHandler(t, newFake()), http.MethodGet, "/v1/jobs/nope/events", nil)
	if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestJobEventsServiceErrorEndsStream(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusRunning})
	srv := httptest.NewServer(newTestHandler(t, svc))
	t.Cleanup(srv.Close) // before openEvents registers closing the body, so it runs after

	br := bufio.NewReader(openEvents(t, t.Context(), srv.URL+"/v1/jobs/j1/events").Body)
	if name, _, err := readEvent(br); err != nil || name != api.EventJob {
		t.Fatalf("first event %s, %v", name, err)
	}
	svc.failJobs(errors.Join(api.ErrUnavailable, errors.New("chain rpc down")))
	name, data, err := readEvent(br)
	var e api.Error
	if err != nil || name != api.EventError || json.Unmarshal([]byte(data), &e) != nil || e.Code != api.CodeUnavailable {
		t.Fatalf("got %s %s %v, want an unavailable error event", name, data, err)
	}
	if _, _, err := readEvent(br); err != io.EOF {
		t.Fatalf("after the error: %v, want the stream to end", err)
	}
}

func TestJobEventsStopWhenClientLeaves(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusRunning})
	h := newTestHandler(t, svc)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		close(done)
	}))
	t.Cleanup(srv.Close) // before openEvents registers closing the body, so it runs after

	ctx, cancel := context.WithCancel(t.Context())
	br := bufio.NewReader(openEvents(t, ctx, srv.URL+"/v1/jobs/j1/events").Body)
	if _, _, err := readEvent(br); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still streaming after the client left")
	}
}

func TestJobEventsKeepAlive(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusRunning})
	h := newTestHandler(t, svc)
	h.keepAlive = time.Millisecond
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // before openEvents registers closing the body, so it runs after

	br := bufio.NewReader(openEvents(t, t.Context(), srv.URL+"/v1/jobs/j1/events").Body)
	if _, _, err := readEvent(br); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(line, ":") {
			return
		}
	}
}

// WaitJob follows the stream through every state; onUpdate drives the fake on, so each state
// is reported exactly once, and the client never needs to fall back to polling.
func TestWaitJobThroughEvents(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusQueued})
	h := newTestHandler(t, svc)
	var polls atomic.Int32
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/jobs/j1" {
			polls.Add(1)
		}
		h.ServeHTTP(w, r)
	}))

	var seen []string
	job, err := c.WaitJob(t.Context(), "j1", func(j api.Job) {
		seen = append(seen, j.Status)
		if i := slices.Index(lifecycle, j.Status); i+1 < len(lifecycle) {
			svc.setStatus("j1", lifecycle[i+1])
		}
	})
	if err != nil || job.Status != api.StatusSettled {
		t.Fatalf("WaitJob = %+v, %v", job, err)
	}
	if !slices.Equal(seen, lifecycle) {
		t.Errorf("updates %v, want %v", seen, lifecycle)
	}
	if n := polls.Load(); n != 0 {
		t.Errorf("%d polls, want none while the stream works", n)
	}
}

// When the stream ends in an error event, WaitJob polls and reports what polling finds.
func TestWaitJobAfterStreamError(t *testing.T) {
	svc := newFake()
	svc.put(api.Job{ID: "j1", Status: api.StatusRunning})
	c := newTestClient(t, newTestHandler(t, svc))
	_, err := c.WaitJob(t.Context(), "j1", func(api.Job) {
		svc.failJobs(errors.New("store corrupted"))
	})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 500 || re.Body.Error != "store corrupted" {
		t.Fatalf("WaitJob error %v, want the 500 polling got", err)
	}
}

func TestWaitJobUnknownJob(t *testing.T) {
	c := newTestClient(t, newTestHandler(t, newFake()))
	if _, err := c.WaitJob(t.Context(), "nope", nil); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("WaitJob = %v, want ErrNotFound", err)
	}
}

// watchingFake is a service that tells when a job changes (JobWatcher), as the router does.
type watchingFake struct {
	*fakeService
	mu      sync.Mutex
	changed chan struct{}
}

func (f *watchingFake) JobChanges(string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == nil {
		f.changed = make(chan struct{})
	}
	return f.changed
}

func (f *watchingFake) setStatus(id, status string) {
	f.fakeService.setStatus(id, status)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// followWatched opens the event stream of job j1, queued, on a service that tells when
// it changes, with a poll interval of an hour: only what the service tells moves it.
func followWatched(t *testing.T) (*watchingFake, *bufio.Reader) {
	t.Helper()
	svc := &watchingFake{fakeService: newFake()}
	svc.put(api.Job{ID: "j1", Status: api.StatusQueued})
	h, err := NewHandler(Options{Service: svc, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return svc, bufio.NewReader(openEvents(t, t.Context(), srv.URL+"/v1/jobs/j1/events").Body)
}

// A service that tells when a job changes is not polled: each change reaches the stream
// at once though the poll interval is an hour.
func TestJobEventsArePushedWhenTheServiceTellsOfChanges(t *testing.T) {
	svc, br := followWatched(t)
	for i, want := range lifecycle {
		if i > 0 {
			svc.setStatus("j1", want)
		}
		start := time.Now()
		name, data, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var job api.Job
		if name != api.EventJob || json.Unmarshal([]byte(data), &job) != nil || job.Status != want {
			t.Fatalf("event %d = %s %s, want a job %s", i, name, data, want)
		}
		if took := time.Since(start); i > 0 && took > time.Second {
			t.Fatalf("the change to %s took %s to reach the stream", want, took)
		}
	}
}

// Changes moments apart make one event: a stream woken by a change reads the job
// changeSettle later, so a burst of changes is sent as the state it ends in.
func TestJobEventsCoalesceABurstOfChanges(t *testing.T) {
	svc, br := followWatched(t)
	if _, _, err := readEvent(br); err != nil { // the job as it is
		t.Fatal(err)
	}
	burst := lifecycle[1:]
	for i, status := range burst {
		if i > 0 {
			time.Sleep(5 * time.Millisecond) // a stream that read at each change would send each
		}
		svc.setStatus("j1", status)
	}
	var got []string
	for {
		name, data, err := readEvent(br)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		var job api.Job
		if name != api.EventJob || json.Unmarshal([]byte(data), &job) != nil {
			t.Fatalf("event %s %s", name, data)
		}
		if got = append(got, job.Status); api.Final(job.Status) {
			break
		}
	}
	if got[len(got)-1] != burst[len(burst)-1] || len(got) >= len(burst) {
		t.Fatalf("events %v for the burst of changes %v: want fewer, ending in the last", got, burst)
	}
}
