package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{&FieldError{Field: "budget", Msg: "must be positive"}, 400, CodeBadRequest},
		{fmt.Errorf("decode: %w", ErrBadRequest), 400, CodeBadRequest},
		{fmt.Errorf("%w: balance 1", ErrInsufficientFunds), 402, CodeInsufficientFunds},
		{ErrUnauthorized, 401, CodeUnauthorized},
		{fmt.Errorf("%w: not the job's consumer", ErrForbidden), 403, CodeForbidden},
		{fmt.Errorf("job j: %w", ErrNotFound), 404, CodeNotFound},
		{ErrConflict, 409, CodeConflict},
		{ErrUnavailable, 503, CodeUnavailable},
		{fmt.Errorf("%w: 64 txs pending", ErrTooManyRequests), 429, CodeTooManyRequests},
		{errors.New("disk on fire"), 500, CodeInternal},
	}
	for _, tt := range tests {
		if status, code := HTTPStatus(tt.err); status != tt.status || code != tt.code {
			t.Errorf("HTTPStatus(%v) = %d %s, want %d %s", tt.err, status, code, tt.status, tt.code)
		}
	}
}

// respond serves one canned response for every request.
func respond(t *testing.T, status int, body string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return NewClient(srv.URL + "/") // a trailing slash is tolerated
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		sentinel error
		field    string
		msg      string
	}{
		{400, `{"error":"spec.budget: must be positive (uomni)","field":"spec.budget","code":"bad_request"}`,
			ErrBadRequest, "spec.budget", "spec.budget: must be positive (uomni)"},
		{400, `{"error":"bad request: invalid JSON","code":"bad_request"}`, ErrBadRequest, "", "bad request: invalid JSON"},
		{402, `{"error":"insufficient funds: balance 1","code":"insufficient_funds"}`, ErrInsufficientFunds, "", "insufficient funds: balance 1"},
		{401, `{"error":"unauthorized: authorization header: missing"}`, ErrUnauthorized, "", "unauthorized: authorization header: missing"},
		{403, `{"error":"forbidden"}`, ErrForbidden, "", "forbidden"},
		{404, `{"error":"not found: job \"x\""}`, ErrNotFound, "", `not found: job "x"`},
		{405, `{"error":"method not allowed"}`, ErrBadRequest, "", "method not allowed"},
		{409, `{"error":"conflict: job exists"}`, ErrConflict, "", "conflict: job exists"},
		{413, `{"error":"request body exceeds 209715200 bytes"}`, ErrBadRequest, "", "request body exceeds 209715200 bytes"},
		{503, `{"error":"service unavailable: chain"}`, ErrUnavailable, "", "service unavailable: chain"},
		{502, `<html>bad gateway</html>`, ErrUnavailable, "", "502 bad gateway"},
		{500, `{"error":"disk on fire","code":"internal"}`, nil, "", "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			_, err := respond(t, tt.status, tt.body).Job(context.Background(), "x")
			var re *ResponseError
			if !errors.As(err, &re) || re.StatusCode != tt.status {
				t.Fatalf("got %v, want a *ResponseError with status %d", err, tt.status)
			}
			if err.Error() != tt.msg {
				t.Errorf("message %q, want %q", err, tt.msg)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("%v does not wrap %v", err, tt.sentinel)
			}
			for _, other := range []error{ErrInsufficientFunds, ErrNotFound, ErrConflict, ErrUnauthorized, ErrForbidden} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Errorf("%v also wraps %v", err, other)
				}
			}
			var fe *FieldError
			if got := errors.As(err, &fe); got != (tt.field != "") {
				t.Fatalf("errors.As FieldError = %v, want %v", got, tt.field != "")
			}
			if fe != nil && (fe.Field != tt.field || fe.Error() != tt.msg || !errors.Is(err, ErrInvalidSpec)) {
				t.Errorf("FieldError %#v", fe)
			}
		})
	}
}

// jobServer scripts the two endpoints WaitJob uses.
type jobServer struct {
	events func(w http.ResponseWriter) // GET /v1/jobs/j/events
	polls  []string                    // statuses for successive GET /v1/jobs/j; "503" answers that
	served atomic.Int32                // polls answered
}

func (s *jobServer) client(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/jobs/j/events":
			s.events(w)
		case "/v1/jobs/j":
			i := min(int(s.served.Add(1))-1, len(s.polls)-1)
			if s.polls[i] == "503" {
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"error":"service unavailable"}`)
				return
			}
			fmt.Fprintf(w, `{"id":"j","status":%q}`, s.polls[i])
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c := NewClient(srv.URL)
	c.PollInterval = time.Millisecond
	return c
}

func sendEvents(events ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			io.WriteString(w, e)
		}
	}
}

func TestWaitJob(t *testing.T) {
	tests := []struct {
		name      string
		server    *jobServer
		want      []string // updates, in order
		wantPolls int32
		wantErr   error
	}{
		{
			name: "stream to the end",
			server: &jobServer{events: sendEvents(
				": hello\n\n",
				"event: job\ndata: {\"id\":\"j\",\"status\":\"running\"}\n\n",
				"event: job\ndata: {\"id\":\"j\",\n",
				"data: \"status\":\"settled\"}\n\n")},
			want: []string{StatusRunning, StatusSettled},
		},
		{
			name: "stream breaks, polling finishes",
			server: &jobServer{
				events: sendEvents("event: job\ndata: {\"id\":\"j\",\"status\":\"running\"}\n\n"),
				polls:  []string{StatusRunning, StatusRunning, StatusComputed, StatusSettled},
			},
			want:      []string{StatusRunning, StatusComputed, StatusSettled},
			wantPolls: 4,
		},
		{
			name: "error event, polling rides out 503s",
			server: &jobServer{
				events: sendEvents("event: error\ndata: {\"error\":\"service unavailable\"}\n\n"),
				polls:  []string{"503", "503", StatusFailed},
			},
			want:      []string{StatusFailed},
			wantPolls: 3,
		},
		{
			name: "stream refused with 503",
			server: &jobServer{
				events: func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
				polls:  []string{StatusExpired},
			},
			want:      []string{StatusExpired},
			wantPolls: 1,
		},
		{
			name: "unknown job fails fast",
			server: &jobServer{events: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":"not found: job \"j\""}`)
			}},
			wantErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		// Without onUpdate the client reads only the job the stream ends with: the same
		// job, found the same way.
		for _, watched := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/onUpdate=%v", tt.name, watched), func(t *testing.T) {
				server := &jobServer{events: tt.server.events, polls: tt.server.polls}
				var got []string
				var onUpdate func(Job)
				if watched {
					onUpdate = func(j Job) { got = append(got, j.Status) }
				}
				job, err := server.client(t).WaitJob(t.Context(), "j", onUpdate)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err %v, want %v", err, tt.wantErr)
					}
					return
				}
				if err != nil || job.Status != tt.want[len(tt.want)-1] || job.ID != "j" {
					t.Fatalf("WaitJob = %+v, %v", job, err)
				}
				if watched && !slices.Equal(got, tt.want) {
					t.Errorf("updates %v, want %v", got, tt.want)
				}
				if n := server.served.Load(); n != tt.wantPolls {
					t.Errorf("%d polls, want %d", n, tt.wantPolls)
				}
			})
		}
	}
}

// Without onUpdate, WaitJob decodes only the job the stream ends with (the server ends it
// after a final status): the states before it go by undecoded, here states it could not
// decode, and a final state whose stream then breaks still ends the wait.
func TestWaitJobWithoutOnUpdateReadsTheLastJob(t *testing.T) {
	for name, end := range map[string]string{
		"the stream ends":   "",
		"the stream breaks": "event: job\ndata: {\"id\":\"j\",\"status\":\"sett", // and no more
	} {
		t.Run(name, func(t *testing.T) {
			s := &jobServer{events: sendEvents(
				"event: job\ndata: {\"id\":\"j\",\"status\":\"running\",\"attempts\":\"one\"}\n\n",
				"event: job\ndata: {\"id\":\"j\",\"status\":\"computed\",\"events\":{}}\n\n",
				"event: job\ndata: {\"id\":\"j\",\"status\":\"settled\",\"attempts\":1}\n\n",
				end), polls: []string{"503"}}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			job, err := s.client(t).WaitJob(ctx, "j", nil)
			if err != nil || job.Status != StatusSettled || job.Attempts != 1 {
				t.Fatalf("WaitJob = %+v, %v; want the settled job", job, err)
			}
			if n := s.served.Load(); n != 0 {
				t.Errorf("%d polls, want none", n)
			}
		})
	}
}

func TestWaitJobStopsWithContext(t *testing.T) {
	s := jobServer{events: sendEvents(), polls: []string{StatusRunning}}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := s.client(t).WaitJob(ctx, "j", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
}

func TestSSEReader(t *testing.T) {
	r := newSSEReader(strings.NewReader(": comment\n\nevent: job\ndata: a\ndata:b\n\ndata: plain\n\nevent: job\ndata: unterminated"))
	var got []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Name+" "+string(ev.Data))
	}
	want := []string{"job a\nb", "message plain"}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// An event longer than the reader's first buffer is read whole: the buffer grows, up to
// maxEventBytes; a longer line is an error, not a truncated event.
func TestSSEReaderLongEvents(t *testing.T) {
	long := strings.Repeat("x", 64*sseFirstBuffer)
	r := newSSEReader(strings.NewReader("event: job\ndata: " + long + "\n\n"))
	if ev, err := r.Next(); err != nil || string(ev.Data) != long {
		t.Fatalf("an event of %d bytes: %d bytes read, %v", len(long), len(ev.Data), err)
	}
	r = newSSEReader(strings.NewReader("data: " + strings.Repeat("x", maxEventBytes) + "\n\n"))
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Fatalf("an event past maxEventBytes: %v, want an error", err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add("event: job\ndata: {}\n\n")
	f.Add(":\n\ndata\n\nevent\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := newSSEReader(strings.NewReader(s))
		for range len(s) + 1 {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatal("more events than bytes")
	})
}

// The daemons print their REST URL with /v1 ("http://127.0.0.1:7070/v1"); a client made
// from it, or from the bare host, must call /v1/... once (issue #9: GET /v1/v1/health).
func TestNewClientAcceptsTheURLWithOrWithoutV1(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	for _, base := range []string{srv.URL, srv.URL + "/", srv.URL + "/v1", srv.URL + "/v1/", srv.URL + "/v1//"} {
		paths = nil
		if _, err := NewClient(base).Health(t.Context()); err != nil {
			t.Errorf("NewClient(%q).Health: %v", base, err)
		}
		if len(paths) != 1 || paths[0] != "/v1/health" {
			t.Errorf("NewClient(%q) requested %v, want [/v1/health]", base, paths)
		}
	}
}
