package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

// The upload reaches the service as a stream: the service reads the first bytes while the
// client is still sending, and this layer holds one read's worth of the budget, not the body.
func TestUploadInputStreams(t *testing.T) {
	svc := newFake()
	data := awaitingJob(svc, "j-up", 1<<20)
	h := newTestHandler(t, svc)
	firstChunk := make(chan struct{})
	var reserved int64
	svc.onChunk = func(_, _ string, _ []byte) {
		select {
		case <-firstChunk:
		default:
			reserved = h.limits.BodyBudget - h.budget.available()
			close(firstChunk)
		}
	}
	c := newTestClient(t, h)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:4096])
		select { // the rest only once the service has seen the start: no buffering in between
		case <-firstChunk:
			pw.Write(data[4096:])
			pw.Close()
		case <-time.After(5 * time.Second):
			pw.CloseWithError(errors.New("the service saw nothing before the body ended: buffered"))
		}
	}()
	if err := c.UploadInput(t.Context(), "j-up", "big", pr, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if reserved != uploadChunk {
		t.Errorf("upload reserved %d bytes of the budget, want %d", reserved, uploadChunk)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if !bytes.Equal(svc.inputs["j-up"]["big"], data) {
		t.Error("stored input differs from the upload")
	}
}

func TestUploadInputErrors(t *testing.T) {
	svc := newFake()
	data := awaitingJob(svc, "j-up", 64)
	awaitingJob(svc, "j-run", 64)
	svc.setStatus("j-run", api.StatusRunning)
	tests := []struct {
		name, path string
		body       []byte
		uploadErr  error
		status     int
		code       string
		msg        string
	}{
		{"short", "/v1/jobs/j-up/inputs/big", data[:10], nil, 400, api.CodeBadRequest, "size mismatch"},
		{"long", "/v1/jobs/j-up/inputs/big", append(bytes.Clone(data), 'x'), nil, 400, api.CodeBadRequest, "more than the 64 bytes"},
		{"tampered", "/v1/jobs/j-up/inputs/big", bytes.Repeat([]byte("y"), 64), nil, 400, api.CodeBadRequest, "digest mismatch"},
		{"unknown job", "/v1/jobs/nope/inputs/big", data, nil, 404, api.CodeNotFound, `job "nope"`},
		{"undeclared input", "/v1/jobs/j-up/inputs/extra", data, nil, 404, api.CodeNotFound, `no input "extra"`},
		{"not awaiting inputs", "/v1/jobs/j-run/inputs/big", data, nil, 409, api.CodeConflict, "not awaiting inputs"},
		{"store down", "/v1/jobs/j-up/inputs/big", data, errors.New("store: disk full"), 500, api.CodeInternal, "disk full"},
		{"stored", "/v1/jobs/j-up/inputs/big", data, nil, 204, "", ""},
		{"again", "/v1/jobs/j-up/inputs/big", data, nil, 409, api.CodeConflict, "already stored"},
	}
	h := newTestHandler(t, svc)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc.mu.Lock()
			svc.uploadErr = tt.uploadErr
			svc.mu.Unlock()
			r := httptest.NewRequest(http.MethodPut, tt.path, bytes.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/octet-stream")
			rec := serveRequest(h, r)
			var e api.Error
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code != tt.status || e.Code != tt.code || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("%d %s, want %d %s saying %q", rec.Code, rec.Body, tt.status, tt.code, tt.msg)
			}
		})
	}
}

// jobWithOutput is a computed job of fakeConsumer's with an output.
func jobWithOutput(svc *fakeService, id string, verified bool) []byte {
	out := []byte("C = A·B, 512×512 int32")
	status := api.StatusComputed
	if verified {
		status = api.StatusSettled
	}
	svc.put(api.Job{ID: id, Consumer: fakeConsumer, Status: status, Verified: verified})
	svc.mu.Lock()
	defer svc.mu.Unlock()
	svc.outputs[id] = out
	return out
}

// Only the job's consumer, with a fresh signature of its own, reads the output.
func TestJobOutputAuth(t *testing.T) {
	svc := newFake()
	out := jobWithOutput(svc, "j1", false)
	svc.put(api.Job{ID: "j-pending", Consumer: fakeConsumer, Status: api.StatusRunning})
	c := newTestClient(t, newTestHandler(t, svc))
	sign := func(key []byte, address, job string, ttl time.Duration, at time.Time) api.OutputAuth {
		return api.SignOutputAuth(key, address, job, ttl, at)
	}
	tests := []struct {
		name     string
		job      string
		auth     api.OutputAuth
		sentinel error // nil: the output is returned
		msg      string
	}{
		{"consumer", "j1", sign(consumerKey, fakeConsumer, "j1", 5*time.Minute, fakeNow), nil, ""},
		{"expired", "j1", sign(consumerKey, fakeConsumer, "j1", 5*time.Minute, fakeNow.Add(-6*time.Minute)), api.ErrUnauthorized, "expired"},
		{"too far ahead", "j1", sign(consumerKey, fakeConsumer, "j1", 16*time.Minute, fakeNow), api.ErrUnauthorized, "more than 15m0s ahead"},
		{"signed for another job", "j1", sign(consumerKey, fakeConsumer, "j2", 5*time.Minute, fakeNow), api.ErrUnauthorized, "does not verify"},
		{"stranger signing as the consumer", "j1", sign(strangerKey, fakeConsumer, "j1", 5*time.Minute, fakeNow), api.ErrUnauthorized, "does not verify"},
		{"stranger as itself", "j1", sign(strangerKey, fakeStranger, "j1", 5*time.Minute, fakeNow), api.ErrForbidden, "not the consumer"},
		{"unknown account", "j1", sign(strangerKey, "omni1ghost", "j1", 5*time.Minute, fakeNow), api.ErrUnauthorized, "unknown account"},
		{"no output yet", "j-pending", sign(consumerKey, fakeConsumer, "j-pending", 5*time.Minute, fakeNow), api.ErrNotFound, "no output yet"},
		{"no such job", "nope", sign(consumerKey, fakeConsumer, "nope", 5*time.Minute, fakeNow), api.ErrNotFound, `job "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.JobOutput(t.Context(), tt.job, tt.auth)
			if tt.sentinel != nil {
				if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("got %v, want %v saying %q", err, tt.sentinel, tt.msg)
				}
				return
			}
			want := api.JobOutput{JobID: "j1", Digest: api.DigestOf(out), Size: int64(len(out)), Status: api.StatusComputed, Data: out}
			if err != nil || got.Digest != want.Digest || got.Size != want.Size || got.Verified || got.Status != want.Status || !bytes.Equal(got.Data, out) {
				t.Fatalf("got %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

// The response says, in headers, what the bytes are and that they are unverified until the
// chain settles the job; a malformed or missing Authorization never reaches the service.
func TestJobOutputResponse(t *testing.T) {
	svc := newFake()
	out := jobWithOutput(svc, "j1", false)
	jobWithOutput(svc, "j-settled", true)
	h := newTestHandler(t, svc)
	get := func(job string, authorization ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/jobs/"+job+"/output", nil)
		for _, a := range authorization {
			r.Header.Add("Authorization", a)
		}
		return serveRequest(h, r)
	}
	good := api.SignOutputAuth(consumerKey, fakeConsumer, "j1", time.Minute, fakeNow).Header()

	rec := get("j1", good)
	hdr := rec.Header()
	if rec.Code != 200 || hdr.Get("Content-Type") != "application/octet-stream" || hdr.Get(api.HeaderDigest) != api.DigestOf(out) ||
		hdr.Get(api.HeaderVerified) != "false" || hdr.Get(api.HeaderJobStatus) != api.StatusComputed ||
		hdr.Get(api.HeaderWarning) != api.UnverifiedWarning || hdr.Get("Cache-Control") != "no-store" || !bytes.Equal(rec.Body.Bytes(), out) {
		t.Errorf("unverified output: %d %v %q", rec.Code, hdr, rec.Body)
	}
	rec = get("j-settled", api.SignOutputAuth(consumerKey, fakeConsumer, "j-settled", time.Minute, fakeNow).Header())
	if rec.Code != 200 || rec.Header().Get(api.HeaderVerified) != "true" || rec.Header().Values(api.HeaderWarning) != nil {
		t.Errorf("verified output: %d %v", rec.Code, rec.Header())
	}

	svc.lastAuth = nil
	for name, headers := range map[string][]string{
		"missing":   nil,
		"bearer":    {"Bearer token"},
		"malformed": {`OmniSig address="omni1consumer"`},
		"twice":     {good, good},
	} {
		rec := get("j1", headers...)
		var e api.Error
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusUnauthorized || e.Code != api.CodeUnauthorized || rec.Header().Get("WWW-Authenticate") != api.OutputAuthScheme {
			t.Errorf("%s: %d %v %s", name, rec.Code, rec.Header(), rec.Body)
		}
	}
	if svc.lastAuth != nil {
		t.Errorf("the service saw %+v from a request the handler should have refused", svc.lastAuth)
	}
}

// badOutput serves bytes that do not match the digest it names.
type badOutput struct{ *fakeService }

func (b badOutput) JobOutput(ctx context.Context, id string, auth api.OutputAuth) (api.JobOutput, error) {
	out, err := b.fakeService.JobOutput(ctx, id, auth)
	out.Data = append(out.Data, '!')
	return out, err
}

func TestJobOutputNotServedUnderWrongDigest(t *testing.T) {
	svc := newFake()
	jobWithOutput(svc, "j1", false)
	h := newTestHandler(t, badOutput{svc})
	r := httptest.NewRequest(http.MethodGet, "/v1/jobs/j1/output", nil)
	r.Header.Set("Authorization", api.SignOutputAuth(consumerKey, fakeConsumer, "j1", time.Minute, fakeNow).Header())
	rec := serveRequest(h, r)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "C = A") {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

// GET /v1/jobs lists the signer's own jobs, filtered and paged, and nobody else's; a
// signature made for something else (an output) does not list anything.
func TestListJobsIsSignedAndPaged(t *testing.T) {
	svc := newFake()
	for _, j := range []api.Job{
		{ID: "j1", Consumer: fakeConsumer, Status: api.StatusSettled},
		{ID: "j2", Consumer: fakeConsumer, Status: api.StatusFailed},
		{ID: "j3", Consumer: fakeConsumer, Status: api.StatusSettled},
		{ID: "s1", Consumer: fakeStranger, Status: api.StatusSettled},
	} {
		svc.put(j)
	}
	c := newTestClient(t, newTestHandler(t, svc))
	ids := func(l api.JobList) []string {
		var out []string
		for _, j := range l.Jobs {
			out = append(out, j.ID)
		}
		return out
	}
	mine := api.SignJobListAuth(consumerKey, fakeConsumer, 5*time.Minute, fakeNow)

	page, err := c.Jobs(t.Context(), mine, api.JobQuery{Limit: 2})
	if err != nil || !slices.Equal(ids(page), []string{"j3", "j2"}) || page.Next != "j2" {
		t.Fatalf("first page %v next %q, %v", ids(page), page.Next, err)
	}
	page, err = c.Jobs(t.Context(), mine, api.JobQuery{Limit: 2, After: page.Next})
	if err != nil || !slices.Equal(ids(page), []string{"j1"}) || page.Next != "" {
		t.Fatalf("second page %v next %q, %v", ids(page), page.Next, err)
	}
	if page, err = c.Jobs(t.Context(), mine, api.JobQuery{Status: api.StatusSettled}); err != nil || !slices.Equal(ids(page), []string{"j3", "j1"}) {
		t.Fatalf("settled: %v, %v", ids(page), err)
	}
	theirs := api.SignJobListAuth(strangerKey, fakeStranger, 5*time.Minute, fakeNow)
	if page, err = c.Jobs(t.Context(), theirs, api.JobQuery{}); err != nil || !slices.Equal(ids(page), []string{"s1"}) {
		t.Fatalf("the stranger sees %v, %v", ids(page), err)
	}

	for _, tt := range []struct {
		name     string
		auth     api.OutputAuth
		q        api.JobQuery
		sentinel error
		msg      string
	}{
		{"stranger signing as the consumer", api.SignJobListAuth(strangerKey, fakeConsumer, time.Minute, fakeNow), api.JobQuery{}, api.ErrUnauthorized, "does not verify"},
		{"an output signature", api.SignOutputAuth(consumerKey, fakeConsumer, "j1", time.Minute, fakeNow), api.JobQuery{}, api.ErrUnauthorized, "does not verify"},
		{"expired", api.SignJobListAuth(consumerKey, fakeConsumer, time.Minute, fakeNow.Add(-2*time.Minute)), api.JobQuery{}, api.ErrUnauthorized, "expired"},
		{"limit too large", mine, api.JobQuery{Limit: api.MaxJobListLimit + 1}, api.ErrBadRequest, "limit"},
		{"unknown status", mine, api.JobQuery{Status: "done"}, api.ErrBadRequest, "status"},
	} {
		if _, err := c.Jobs(t.Context(), tt.auth, tt.q); !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: got %v, want %v saying %q", tt.name, err, tt.sentinel, tt.msg)
		}
	}
	// No header at all is refused before the service is asked.
	resp, err := http.Get(c.BaseURL + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned list: %s", resp.Status)
	}
}

// A job's logs are its consumer's, read with the same signed request as its output, from
// any position; a bad position never reaches the service.
func TestJobLogsAreTheConsumers(t *testing.T) {
	svc := newFake()
	jobWithOutput(svc, "j1", false)
	svc.mu.Lock()
	svc.logs = map[string][]byte{"j1": []byte("epoch 1\nepoch 2\n")}
	svc.mu.Unlock()
	c := newTestClient(t, newTestHandler(t, svc))
	auth := api.SignOutputAuth(consumerKey, fakeConsumer, "j1", time.Minute, fakeNow)
	logs, err := c.JobLogs(t.Context(), "j1", auth, "", 8)
	if err != nil || string(logs.Data) != "epoch 2\n" || logs.From != 8 || logs.Next != 16 || !logs.EOF {
		t.Fatalf("logs from 8: %+v %v", logs, err)
	}
	for name, a := range map[string]api.OutputAuth{
		"stranger":               api.SignOutputAuth(strangerKey, fakeStranger, "j1", time.Minute, fakeNow),
		"another job's":          api.SignOutputAuth(consumerKey, fakeConsumer, "j2", time.Minute, fakeNow),
		"a list signature":       api.SignJobListAuth(consumerKey, fakeConsumer, time.Minute, fakeNow),
		"forged as the consumer": api.SignOutputAuth(strangerKey, fakeConsumer, "j1", time.Minute, fakeNow),
	} {
		if _, err := c.JobLogs(t.Context(), "j1", a, "", 0); !errors.Is(err, api.ErrUnauthorized) && !errors.Is(err, api.ErrForbidden) {
			t.Errorf("%s: %v", name, err)
		}
	}
	rec := serve(newTestHandler(t, svc), http.MethodGet, "/v1/jobs/j1/logs?from=-1", nil)
	if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusBadRequest {
		t.Fatalf("a negative position: %d", rec.Code)
	}
}
