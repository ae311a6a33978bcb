package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/api"
)

func (s *server) submitJob(w http.ResponseWriter, r *http.Request) {
	req, release, err := s.readSubmit(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release() // the inline inputs stay in memory until the service has taken them
	if err := checkSubmit(req); err != nil {
		s.writeError(w, r, err)
		return
	}
	job, err := s.svc.SubmitJob(r.Context(), req)
	if err != nil {
		s.writeError(w, r, txError(err)) // the escrow tx may be rejected by the ledger
		return
	}
	w.Header().Set("Location", "/v1/jobs/"+url.PathEscape(job.ID))
	writeJSON(w, http.StatusAccepted, job)
}

// readSubmit reads a submission sent as JSON or as multipart/form-data
// (api.DecodeSubmitMultipart), within MaxJobBody and the server's body budget.
func (s *server) readSubmit(w http.ResponseWriter, r *http.Request) (api.SubmitJobRequest, func(), error) {
	var req api.SubmitJobRequest
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		release, err := s.readJSON(w, r, s.limits.MaxJobBody, &req)
		return req, release, err
	}
	limit := s.limits.MaxJobBody
	release, err := s.reserveBody(r, limit)
	if err != nil {
		return req, nil, err
	}
	if req, err = api.DecodeSubmitMultipart(http.MaxBytesReader(w, r.Body, limit), params["boundary"]); err != nil {
		release()
		return req, nil, err
	}
	return req, release, nil
}

// checkSubmit does the checks that need no state: the spec is valid, every input carried
// inline is declared and matches its size and digest, and a tx is present. A declared input
// may be left out: it is uploaded once the job exists (PUT /v1/jobs/{id}/inputs/{name}).
// The service still checks the tx itself (signature, its commitment to Spec.Hash()). Fields
// are named by their path in the request body, so spec fields start with "spec.".
func checkSubmit(req api.SubmitJobRequest) error {
	if err := req.Spec.Validate(); err != nil {
		var fe *api.FieldError
		if errors.As(err, &fe) {
			return &api.FieldError{Field: "spec." + fe.Field, Msg: fe.Msg}
		}
		return err
	}
	declared := make(map[string]bool, len(req.Spec.Inputs))
	for _, in := range req.Spec.Inputs {
		declared[in.Name] = true
		data, ok := req.InputData[in.Name]
		switch {
		case !ok:
			continue // to be uploaded
		case int64(len(data)) != in.Size:
			return &api.FieldError{Field: inputField(in.Name), Msg: fmt.Sprintf("size mismatch: %d bytes, spec declares %d", len(data), in.Size)}
		case api.DigestOf(data) != in.Digest:
			return &api.FieldError{Field: inputField(in.Name), Msg: "digest mismatch"}
		}
	}
	var undeclared []string
	for name := range req.InputData {
		if !declared[name] {
			undeclared = append(undeclared, name)
		}
	}
	if len(undeclared) > 0 {
		return &api.FieldError{Field: inputField(slices.Min(undeclared)), Msg: "not declared in spec.inputs"}
	}
	if len(req.Tx) == 0 {
		return &api.FieldError{Field: "tx", Msg: "required: the signed create_job transaction"}
	}
	return nil
}

func inputField(name string) string { return fmt.Sprintf("input_data[%q]", name) }

func (s *server) getJob(w http.ResponseWriter, r *http.Request) {
	_, b, err := s.jobJSON(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeEncoded(w, http.StatusOK, b)
}

// JobEncoder is a Service that encodes a job more cheaply than json.Marshal encodes what
// its Job returns (the router keeps each job's events encoded): a job's event stream
// encodes the job at every change, for each of its followers.
type JobEncoder interface {
	// JobJSON returns what Job returns, with or without its events, and the whole job
	// encoded byte for byte as json.Marshal encodes it. The bytes are the caller's.
	JobJSON(ctx context.Context, id string) (api.Job, []byte, error)
}

// jobJSON reads a job and encodes it, through the service when it is a JobEncoder.
func (s *server) jobJSON(ctx context.Context, id string) (api.Job, []byte, error) {
	if enc, ok := s.svc.(JobEncoder); ok {
		return enc.JobJSON(ctx, id)
	}
	job, err := s.svc.Job(ctx, id)
	if err != nil {
		return job, nil, err
	}
	b, err := json.Marshal(job)
	return job, b, err
}

// listJobs is GET /v1/jobs?status=&limit=&after=, signed by the account whose jobs it lists.
func (s *server) listJobs(w http.ResponseWriter, r *http.Request) {
	auth, ok := s.signedBy(w, r)
	if !ok {
		return
	}
	var err error
	qv := r.URL.Query()
	q := api.JobQuery{Status: qv.Get("status"), After: qv.Get("after")}
	if l := qv.Get("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit < 1 || q.Limit > api.MaxJobListLimit {
			s.writeError(w, r, &api.FieldError{Field: "limit", Msg: fmt.Sprintf("%q: want 1 to %d", l, api.MaxJobListLimit)})
			return
		}
	}
	if q.Status != "" && !slices.Contains(api.Statuses, q.Status) {
		s.writeError(w, r, &api.FieldError{Field: "status", Msg: fmt.Sprintf("%q: want one of %s", q.Status, strings.Join(api.Statuses, ", "))})
		return
	}
	list, err := s.svc.Jobs(r.Context(), auth, q)
	s.reply(w, r, list, err)
}

// JobWatcher is a Service that can tell when a job changes (the router, for the jobs it
// runs): an event stream then waits for the change instead of asking every PollInterval.
type JobWatcher interface {
	// JobChanges returns a channel closed at the job's next change, or nil when the
	// service cannot tell for this job.
	JobChanges(id string) <-chan struct{}
}

// watchedPoll is how often an event stream asks for a job it is told the changes of
// (at least PollInterval): the chain's record changes without the service's word when
// another party acts (validators attest, the deadline passes).
const watchedPoll = 2 * time.Second

// changeSettle is how long an event stream woken by a change waits before it reads the
// job: a job changes several times within moments (placed, dispatched, running, its
// result; attested, decided, settled), and one event then carries them all. Each event
// is the whole job, read, encoded, sent and decoded again by the client: a consumer
// following devnet jobs live got 5.9 events a job, and 5.0 with this.
const changeSettle = 50 * time.Millisecond

// jobEvents streams the job as server-sent events (see api.EventJob): its current state at
// once, then every change, until a final status, an error, or the client leaving. Where
// the service is a JobWatcher the stream wakes when the job changes (and reads it
// changeSettle later, so that changes moments apart make one event), and asks anyway
// every watchedPoll; otherwise it polls Service.Job every s.poll. Comments keep idle streams
// alive through proxies.
func (s *server) jobEvents(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	watcher, _ := s.svc.(JobWatcher)
	changes := func() <-chan struct{} {
		if watcher == nil {
			return nil
		}
		return watcher.JobChanges(id) // before reading the job, so no change falls between
	}
	changed := changes()
	job, b, err := s.jobJSON(ctx, id)
	if err != nil {
		s.writeError(w, r, err) // before the stream starts, so a plain error response
		return
	}
	// The stream outlives any fixed deadline: reads have nothing to wait for (a passing
	// read deadline would end ctx), and each write gets WriteTimeout of its own, so a
	// client that stops reading is still dropped.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	// write sends p, flushed unless it is the stream's last: net/http sends that with the
	// response's end, in one write rather than two.
	write := func(p []byte, last bool) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
		if _, err := w.Write(p); err != nil {
			return false
		}
		return last || rc.Flush() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var frame []byte // one event as it goes out, reused
	send := func(event string, data []byte, last bool) bool {
		frame = append(append(append(frame[:0], "event: "...), event...), "\ndata: "...)
		frame = append(append(frame, data...), "\n\n"...)
		return write(frame, last)
	}
	wait := time.NewTimer(s.poll)
	defer wait.Stop()
	var last []byte
	lastWrite := time.Now()
	for {
		final := api.Final(job.Status)
		if !bytes.Equal(b, last) {
			if !send(api.EventJob, b, final) {
				return
			}
			last, lastWrite = b, time.Now()
		} else if time.Since(lastWrite) >= s.keepAlive {
			if !write([]byte(": keep-alive\n\n"), false) {
				return
			}
			lastWrite = time.Now()
		}
		if final {
			return
		}
		interval := s.poll
		if changed != nil {
			interval = max(s.poll, watchedPoll)
		}
		wait.Reset(min(interval, s.keepAlive))
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		case <-changed:
			wait.Reset(changeSettle)
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
		}
		changed = changes()
		if job, b, err = s.jobJSON(ctx, id); err != nil {
			if ctx.Err() == nil {
				_, body := s.errorBody(r, err)
				data, _ := json.Marshal(body) // plain data
				send(api.EventError, data, true)
			}
			return
		}
	}
}

func (s *server) getNodes(w http.ResponseWriter, r *http.Request) {
	nodes, err := s.svc.Nodes(r.Context())
	if nodes == nil {
		nodes = []api.Node{} // [] rather than null
	}
	s.reply(w, r, nodes, err)
}

func (s *server) getAccount(w http.ResponseWriter, r *http.Request) {
	acct, err := s.svc.Account(r.Context(), r.PathValue("address"))
	s.reply(w, r, acct, err)
}

func (s *server) getSupply(w http.ResponseWriter, r *http.Request) {
	supply, err := s.svc.Supply(r.Context())
	s.reply(w, r, supply, err)
}

func (s *server) getHealth(w http.ResponseWriter, r *http.Request) {
	health := make(map[string]string, len(s.info)+1)
	maps.Copy(health, s.info)
	if s.live != nil {
		maps.Copy(health, s.live())
	}
	health["status"] = "ok"
	writeJSON(w, http.StatusOK, health)
}

// reply sends v with 200, or err.
func (s *server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// getStats is GET /v1/stats: the router's recent work.
func (s *server) getStats(w http.ResponseWriter, r *http.Request) {
	st, err := s.svc.Stats(r.Context())
	s.reply(w, r, st, err)
}
