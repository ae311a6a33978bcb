package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// encodingFake is a service that encodes its jobs itself (JobEncoder), as the router
// does: in an order of its own, so that a test sees whose encoding was sent.
type encodingFake struct {
	*fakeService
	encoded atomic.Int32 // JobJSON calls
}

func (f *encodingFake) JobJSON(ctx context.Context, id string) (api.Job, []byte, error) {
	f.encoded.Add(1)
	job, err := f.Job(ctx, id)
	if err != nil {
		return api.Job{}, nil, err
	}
	return job, fmt.Appendf(nil, `{"status":%q,"id":%q}`, job.Status, job.ID), nil
}

// A service that encodes its jobs (the router keeps their events encoded) has its
// encoding sent as it is, by the event stream and by GET /v1/jobs/{id}; its errors are
// answered as Job's are.
func TestJobsAreSentAsTheServiceEncodesThem(t *testing.T) {
	svc := &encodingFake{fakeService: newFake()}
	svc.put(api.Job{ID: "j1", Status: api.StatusQueued})
	srv := httptest.NewServer(newTestHandler(t, svc))
	t.Cleanup(srv.Close) // before openEvents registers closing the body, so it runs after

	resp, err := http.Get(srv.URL + "/v1/jobs/j1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"status":"queued","id":"j1"}` + "\n"; resp.StatusCode != 200 || string(body) != want ||
		resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(want)) {
		t.Fatalf("GET: %d %q (%s, %d bytes), want %q", resp.StatusCode, body, resp.Header.Get("Content-Type"), resp.ContentLength, want)
	}

	br := bufio.NewReader(openEvents(t, t.Context(), srv.URL+"/v1/jobs/j1/events").Body)
	for i, status := range lifecycle {
		name, data, err := readEvent(br)
		if want := fmt.Sprintf(`{"status":%q,"id":"j1"}`, status); err != nil || name != api.EventJob || data != want {
			t.Fatalf("event %d = %s %s, %v; want %s", i, name, data, err, want)
		}
		if i+1 < len(lifecycle) {
			svc.setStatus("j1", lifecycle[i+1])
		}
	}
	if _, _, err := readEvent(br); err != io.EOF {
		t.Fatalf("after the final status: %v, want the stream to end", err)
	}
	if svc.encoded.Load() == 0 {
		t.Fatal("the service's JobJSON was never called")
	}

	if rec := serve(newTestHandler(t, svc), http.MethodGet, "/v1/jobs/nope", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("GET an unknown job: %d, want 404", rec.Code)
	}
	if rec := serve(newTestHandler(t, svc), http.MethodGet, "/v1/jobs/nope/events", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("the events of an unknown job: %d, want 404", rec.Code)
	}
}

// flushCounter records a response and counts the flushes asked of it; onFlush, when set,
// runs at each.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
	onFlush func()
}

func (f *flushCounter) Flush() {
	f.flushes++
	f.ResponseRecorder.Flush()
	if f.onFlush != nil {
		f.onFlush()
	}
}

// Each event but a stream's last is flushed as it is sent; the last, the job's final
// state or an error, goes out with the response's end, which net/http then sends in the
// same write.
func TestJobEventsLeaveTheLastEventToTheResponsesEnd(t *testing.T) {
	for _, tt := range []struct {
		name        string
		next        func(svc *fakeService) // at the first flush
		wantEvents  []string
		wantFlushes int
	}{
		{"settled at once", nil, []string{api.EventJob}, 0},
		{"running, then settled", func(svc *fakeService) { svc.setStatus("j1", api.StatusSettled) }, []string{api.EventJob, api.EventJob}, 1},
		{"running, then an error", func(svc *fakeService) { svc.failJobs(api.ErrUnavailable) }, []string{api.EventJob, api.EventError}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := newFake()
			status := api.StatusRunning
			if tt.next == nil {
				status = api.StatusSettled
			}
			svc.put(api.Job{ID: "j1", Status: status})
			rec := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
			rec.onFlush = func() {
				if rec.flushes == 1 && tt.next != nil {
					tt.next(svc)
				}
			}
			newTestHandler(t, svc).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/jobs/j1/events", nil))
			var names []string
			br := bufio.NewReader(rec.Body)
			for {
				name, _, err := readEvent(br)
				if err != nil {
					break
				}
				names = append(names, name)
			}
			if !slices.Equal(names, tt.wantEvents) || rec.flushes != tt.wantFlushes {
				t.Fatalf("events %v with %d flushes, want %v with %d", names, rec.flushes, tt.wantEvents, tt.wantFlushes)
			}
		})
	}
}
