package api

import (
	"bytes"
	"context"
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
)

// testRouter is a REST API that answers every request with status (200: a job, also read
// as a broadcast's result) and logs what it was sent.
type testRouter struct {
	*httptest.Server
	status int

	mu  sync.Mutex
	got []string // "METHOD /path body", in order
}

func newTestRouter(t *testing.T, status int) *testRouter {
	t.Helper()
	r := &testRouter{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, req.Method+" "+req.URL.Path+" "+string(body))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.status {
		case http.StatusOK:
			io.WriteString(w, `{"id":"j","status":"queued","hash":"AB","height":7}`)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(r.status)
			io.WriteString(w, `{"error":"service unavailable: cut off from the cluster","code":"unavailable"}`)
		case http.StatusConflict:
			w.WriteHeader(r.status)
			io.WriteString(w, `{"error":"conflict: sequence 4 already used","code":"conflict"}`)
		default:
			w.WriteHeader(r.status)
			io.WriteString(w, "<html>bad gateway</html>")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *testRouter) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// deadURL is the URL of a server that has closed its listener: nothing answers there.
func deadURL() string {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

// hostLog is a transport that logs the URL of every request it carries, without its path.
type hostLog struct {
	mu    sync.Mutex
	hosts []string
}

func (l *hostLog) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.hosts = append(l.hosts, "http://"+r.URL.Host)
	l.mu.Unlock()
	return transport.RoundTrip(r)
}

// take returns the URLs logged since the last take.
func (l *hostLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	hosts := l.hosts
	l.hosts = nil
	return hosts
}

// clientOf returns a client of urls, in order, whose requests log their URL in log.
func clientOf(log *hostLog, urls ...string) *Client {
	c := NewClient(strings.Join(urls, ","))
	c.HTTP = &http.Client{Transport: log}
	return c
}

// The requests a client may send to another URL: reads, and the two signed transactions.
var replayableCalls = []struct {
	name string
	call func(context.Context, *Client) error
	want string // "METHOD /path" as the server sees it
}{
	{"get job", func(ctx context.Context, c *Client) error { _, err := c.Job(ctx, "j"); return err }, "GET /v1/jobs/j"},
	{"submit json", func(ctx context.Context, c *Client) error {
		_, err := c.SubmitJob(ctx, SubmitJobRequest{Tx: []byte("signed")})
		return err
	}, "POST /v1/jobs"},
	{"submit multipart", func(ctx context.Context, c *Client) error {
		_, err := c.SubmitJob(ctx, multipartRequest())
		return err
	}, "POST /v1/jobs"},
	{"broadcast", func(ctx context.Context, c *Client) error { _, err := c.BroadcastTx(ctx, []byte("signed")); return err }, "POST /v1/chain/txs"},
}

// A client of several URLs sends a request that the first did not serve (it did not
// answer, or answered 502, 503 or 504) to the second, with the same body, and starts the
// next request at the second. Any other answer is the answer.
func TestClientFailsOver(t *testing.T) {
	firsts := []struct {
		name     string
		status   int // 0: nothing answers
		failover bool
	}{
		{"dead", 0, true},
		{"502", http.StatusBadGateway, true},
		{"503", http.StatusServiceUnavailable, true},
		{"504", http.StatusGatewayTimeout, true},
		{"409 is an answer", http.StatusConflict, false},
	}
	for _, first := range firsts {
		for _, tt := range replayableCalls {
			t.Run(first.name+"/"+tt.name, func(t *testing.T) {
				a, b := deadURL(), newTestRouter(t, http.StatusOK)
				var ra *testRouter
				if first.status != 0 {
					ra = newTestRouter(t, first.status)
					a = ra.URL
				}
				log := &hostLog{}
				c := clientOf(log, a, b.URL)

				err := tt.call(t.Context(), c)
				if !first.failover {
					if !errors.Is(err, ErrConflict) || len(b.requests()) != 0 {
						t.Fatalf("err %v and %d requests at the second URL, want the first's conflict alone", err, len(b.requests()))
					}
					return
				}
				if err != nil {
					t.Fatalf("through the second URL: %v", err)
				}
				if got := log.take(); !slices.Equal(got, []string{a, b.URL}) {
					t.Errorf("sent to %v, want %v", got, []string{a, b.URL})
				}
				got := b.requests()
				if len(got) != 1 || !strings.HasPrefix(got[0], tt.want+" ") {
					t.Fatalf("second URL got %q, want one %s", got, tt.want)
				}
				if ra != nil && ra.requests()[0] != got[0] {
					t.Errorf("second URL got %q, the first %q: want the same request", got[0], ra.requests()[0])
				}

				if _, err := c.Job(t.Context(), "j"); err != nil {
					t.Fatal(err)
				}
				if got := log.take(); !slices.Equal(got, []string{b.URL}) {
					t.Errorf("the next request went to %v, want the second URL alone, which answered last", got)
				}
			})
		}
	}
}

// An input's upload is not sent to another URL once it may have reached the first: its
// body was streamed, or PUT is not among the requests a signed sequence makes safe.
func TestClientDoesNotReplayAnUpload(t *testing.T) {
	var cuts atomic.Int32
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cuts.Add(1)
		io.ReadFull(r.Body, make([]byte, 1024)) // part of the body, then no answer at all
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(cut.Close)
	live := newTestRouter(t, http.StatusOK)
	data := bytes.Repeat([]byte("x"), 4<<20)

	bodies := map[string]func() io.Reader{
		"streamed":  func() io.Reader { return io.MultiReader(bytes.NewReader(data)) },
		"in memory": func() io.Reader { return bytes.NewReader(data) },
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			cuts.Store(0)
			err := NewClient(cut.URL+","+live.URL).UploadInput(t.Context(), "j", "a", body(), int64(len(data)))
			if cuts.Load() != 1 {
				t.Fatalf("the first URL was sent %d uploads, want 1", cuts.Load())
			}
			if err == nil {
				t.Fatal("an upload the first URL cut off succeeded")
			}
			var fe *FailoverError
			if errors.As(err, &fe) || !strings.Contains(err.Error(), cut.URL) {
				t.Errorf("err %v, want the first URL's own error", err)
			}
			if got := live.requests(); len(got) != 0 {
				t.Errorf("the second URL was sent %d requests, want none", len(got))
			}
		})
	}
}

// When no URL serves a request, the error says what each did; it is still an unavailable
// service to errors.Is and WaitJob, with the first answer's Retry-After.
func TestClientFailoverErrorNamesEveryURL(t *testing.T) {
	dead, unavailable, gateway := deadURL(), newTestRouter(t, http.StatusServiceUnavailable), newTestRouter(t, http.StatusBadGateway)
	c := NewClient(dead + "/v1," + unavailable.URL + "," + gateway.URL)

	_, err := c.Job(t.Context(), "j")
	var fe *FailoverError
	if !errors.As(err, &fe) || len(fe.Failed) != 3 {
		t.Fatalf("err %v, want a *FailoverError of three URLs", err)
	}
	for _, want := range []string{
		"GET /v1/jobs/j: ",
		dead + " did not answer (dial tcp ",
		unavailable.URL + " answered 503 (service unavailable: cut off from the cluster)",
		gateway.URL + " answered 502 bad gateway",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if wait, ok := RetryAfter(err); !errors.Is(err, ErrUnavailable) || !transient(err) || !ok || wait.Seconds() != 2 {
		t.Errorf("err %v: want an unavailable service, to retry in 2s (%v, %v)", err, wait, ok)
	}
	if len(unavailable.requests()) != 1 || len(gateway.requests()) != 1 {
		t.Errorf("requests %d and %d, want each URL tried once", len(unavailable.requests()), len(gateway.requests()))
	}
}

// A job's event stream that breaks is followed again from the next URL, rather than
// polled, and the updates carry on where they were.
func TestWaitJobFollowsTheStreamAtTheNextURL(t *testing.T) {
	var polls sync.Map
	streamer := func(events ...string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/jobs/j/events" {
				polls.Store(r.URL.Path, true)
				http.NotFound(w, r)
				return
			}
			sendEvents(events...)(w)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	job := func(status string) string {
		return fmt.Sprintf("event: job\ndata: {\"id\":\"j\",\"status\":%q}\n\n", status)
	}
	a := streamer(job(StatusRunning)) // and then the stream ends, the job not final
	b := streamer(job(StatusRunning), job(StatusSettled))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	j, err := NewClient(a.URL+","+b.URL).WaitJob(ctx, "j", func(j Job) { got = append(got, j.Status) })
	if err != nil || j.Status != StatusSettled {
		t.Fatalf("WaitJob = %+v, %v", j, err)
	}
	if !slices.Equal(got, []string{StatusRunning, StatusSettled}) {
		t.Errorf("updates %v, want running, settled", got)
	}
	polls.Range(func(path, _ any) bool {
		t.Errorf("polled %s", path)
		return true
	})
}

func TestNewClientTakesSeveralURLs(t *testing.T) {
	c := NewClient(" http://a:7070/v1/ ,http://b:7070//,, http://c:7070/v1")
	urls, list := c.urls()
	if want := []string{"http://a:7070", "http://b:7070", "http://c:7070"}; c.BaseURL != want[0] || list == nil || !slices.Equal(urls, want) {
		t.Fatalf("BaseURL %q, urls %q: want %q, the first as BaseURL", c.BaseURL, urls, want)
	}
	// A caller that sets BaseURL gets a client of that URL alone, as before.
	c.BaseURL = "http://d:7070"
	if urls, list := c.urls(); list != nil || !slices.Equal(urls, []string{"http://d:7070"}) {
		t.Errorf("after setting BaseURL: urls %q", urls)
	}
	if urls, list := NewClient("http://a:7070/v1").urls(); list != nil || !slices.Equal(urls, []string{"http://a:7070"}) {
		t.Errorf("one URL: urls %q", urls)
	}
}

// Where a call's context has a deadline, each URL but the last has an equal share of it to
// answer: a URL that never answers passes the call on to the next in time, and a URL
// that answers in time may take the rest of the deadline for its body.
func TestFailoverSharesTheDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	live := newTestRouter(t, http.StatusOK)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var log hostLog
	job, err := clientOf(&log, hung.URL, live.URL).Job(ctx, "j")
	if err != nil || job.ID != "j" {
		t.Fatalf("a hung first URL, then a live one: %+v, %v", job, err)
	}
	if got := log.take(); !slices.Equal(got, []string{hung.URL, live.URL}) {
		t.Fatalf("asked %v", got)
	}

	// Both hang: the error names what each did, the first its share.
	ctx, cancel = context.WithTimeout(t.Context(), 400*time.Millisecond)
	defer cancel()
	_, err = clientOf(&log, hung.URL, hung.URL).Job(ctx, "j")
	var fe *FailoverError
	if !errors.As(err, &fe) || len(fe.Failed) != 2 || !strings.Contains(fe.Failed[0].Err.Error(), "this URL's share of the request's time") {
		t.Fatalf("two hung URLs: %v", err)
	}

	// A body slower than the share is read whole.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"j",`)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, `"status":"queued"}`)
	}))
	defer slow.Close()
	ctx, cancel = context.WithTimeout(t.Context(), 600*time.Millisecond)
	defer cancel()
	c := clientOf(&log, slow.URL, live.URL, live.URL) // the first URL's share: 200 ms
	if job, err := c.Job(ctx, "j"); err != nil || job.Status != "queued" {
		t.Fatalf("a body slower than its URL's share: %+v, %v", job, err)
	}
}
