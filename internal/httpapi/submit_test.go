package httpapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omnisync/omnisync/api"
)

func TestSubmitJob(t *testing.T) {
	valid, _ := json.Marshal(validRequest())
	tests := []struct {
		name   string
		mutate func(*api.SubmitJobRequest) // applied to validRequest unless raw is set
		raw    string
		svcErr error
		status int
		field  string
		code   string
		msg    string // a substring of the error message
		job    string // the job's status when accepted; queued unless set
		retry  string // the Retry-After header
	}{
		{name: "accepted", status: http.StatusAccepted},
		{name: "input left for upload", mutate: func(r *api.SubmitJobRequest) { delete(r.InputData, "a") },
			status: http.StatusAccepted, job: api.StatusAwaitingInputs},
		{name: "no input inline", mutate: func(r *api.SubmitJobRequest) { r.InputData = nil },
			status: http.StatusAccepted, job: api.StatusAwaitingInputs},

		{name: "no workload kind", mutate: func(r *api.SubmitJobRequest) { r.Spec.Workload.Kind = "" },
			status: 400, field: "spec.workload.kind", msg: "required"},
		{name: "unknown workload kind", mutate: func(r *api.SubmitJobRequest) { r.Spec.Workload.Kind = "docker" },
			status: 400, field: "spec.workload.kind", msg: "not supported"},
		{name: "no kernel", mutate: func(r *api.SubmitJobRequest) { r.Spec.Workload.Kernel = "" },
			status: 400, field: "spec.workload.kernel"},
		{name: "no inputs", mutate: func(r *api.SubmitJobRequest) { r.Spec.Inputs = nil },
			status: 400, field: "spec.inputs"},
		{name: "malformed digest", mutate: func(r *api.SubmitJobRequest) { r.Spec.Inputs[1].Digest = "md5:abc" },
			status: 400, field: "spec.inputs[1].digest"},
		{name: "no gpus", mutate: func(r *api.SubmitJobRequest) { r.Spec.Resources.GPUs = 0 },
			status: 400, field: "spec.resources.gpus"},
		{name: "latitude out of range", mutate: func(r *api.SubmitJobRequest) { r.Spec.Placement.LatE6 = 91_000_000 },
			status: 400, field: "spec.placement.lat_e6"},
		{name: "zero budget", mutate: func(r *api.SubmitJobRequest) { r.Spec.Budget = 0 },
			status: 400, field: "spec.budget"},
		{name: "timeout too long", mutate: func(r *api.SubmitJobRequest) { r.Spec.TimeoutSeconds = api.MaxTimeout + 1 },
			status: 400, field: "spec.timeout_seconds"},
		{name: "unknown verification", mutate: func(r *api.SubmitJobRequest) { r.Spec.Verification = "trust-me" },
			status: 400, field: "spec.verification"},

		{name: "digest mismatch", mutate: func(r *api.SubmitJobRequest) {
			r.InputData["a"] = []byte(strings.ToUpper(string(r.InputData["a"]))) // same size
		}, status: 400, field: `input_data["a"]`, msg: `input_data["a"]: digest mismatch`},
		{name: "size mismatch", mutate: func(r *api.SubmitJobRequest) { r.InputData["b"] = append(r.InputData["b"], '!') },
			status: 400, field: `input_data["b"]`, msg: "size mismatch"},
		{name: "undeclared input data", mutate: func(r *api.SubmitJobRequest) { r.InputData["zz"] = []byte("x") },
			status: 400, field: `input_data["zz"]`, msg: "not declared"},
		{name: "no tx", mutate: func(r *api.SubmitJobRequest) { r.Tx = nil },
			status: 400, field: "tx"},

		{name: "unknown field", raw: `{"spec":{},"tx":"eA==","priority":"high"}`,
			status: 400, field: "priority", msg: "unknown field"},
		{name: "wrong type", raw: `{"spec":{"budget":"lots"}}`,
			status: 400, field: "spec.budget", msg: "must be a number"},
		{name: "bad base64", raw: `{"tx":"not base64!"}`, status: 400, msg: "base64"},
		{name: "truncated", raw: `{"spec":{"workload":`, status: 400, msg: "truncated"},
		{name: "not json", raw: `<xml/>`, status: 400, msg: "invalid JSON at byte 1"},
		{name: "empty body", raw: " ", status: 400, msg: "empty"},
		{name: "trailing data", raw: string(valid) + `{}`, status: 400, msg: "after the JSON body"},
		{name: "array body", raw: `[]`, status: 400, msg: "must be a JSON object, not array"},

		{name: "insufficient funds", svcErr: fmt.Errorf("create_job: %w: balance 10 < budget 5000000", api.ErrInsufficientFunds),
			status: 402, code: "insufficient_funds", msg: "insufficient funds: balance 10"},
		{name: "bad signature", svcErr: &api.FieldError{Field: "tx", Msg: "bad signature"},
			status: 400, field: "tx", msg: "tx: bad signature"},
		{name: "forbidden", svcErr: api.ErrForbidden, status: 403, code: "forbidden"},
		{name: "duplicate", svcErr: fmt.Errorf("%w: job exists", api.ErrConflict), status: 409, code: "conflict"},
		{name: "chain down", svcErr: fmt.Errorf("%w: chain rpc", api.ErrUnavailable), status: 503, code: "unavailable"},
		{name: "store down, retry in 1.2 s", svcErr: api.RetryIn(fmt.Errorf("%w: store", api.ErrUnavailable), 1200*time.Millisecond),
			status: 503, code: "unavailable", retry: "2"},
		{name: "too many", svcErr: fmt.Errorf("%w: pending", api.ErrTooManyRequests), status: 429, code: "too_many_requests", retry: "1"},
		{name: "held, retry in 5 s", svcErr: api.RetryIn(fmt.Errorf("%w: job held by router X", api.ErrTooManyRequests), 5*time.Second),
			status: 429, code: "too_many_requests", msg: "held by router X", retry: "5"},
		{name: "retry in no time", svcErr: api.RetryIn(fmt.Errorf("%w: now", api.ErrTooManyRequests), 0),
			status: 429, code: "too_many_requests", retry: "1"},
		{name: "unexpected", svcErr: errors.New("disk on fire"), status: 500, code: "internal", msg: "disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := newFake()
			svc.submitErr = tt.svcErr
			h := newTestHandler(t, svc)
			req := validRequest()
			body := []byte(tt.raw)
			if tt.raw == "" {
				if tt.mutate != nil {
					tt.mutate(&req)
				}
				body, _ = json.Marshal(req)
			}
			rec := serve(h, http.MethodPost, "/v1/jobs", body)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.status == http.StatusAccepted {
				var job api.Job
				want := cmp.Or(tt.job, api.StatusQueued)
				if err := json.Unmarshal(rec.Body.Bytes(), &job); err != nil || job.ID != "job-1" || job.Status != want {
					t.Fatalf("job %+v, err %v; want job-1 %s", job, err, want)
				}
				if loc := rec.Header().Get("Location"); loc != "/v1/jobs/job-1" {
					t.Errorf("Location %q", loc)
				}
				if !reflect.DeepEqual(*svc.lastSubmit, req) {
					t.Errorf("service got %+v, want %+v", *svc.lastSubmit, req)
				}
				return
			}
			if got := rec.Header().Get("Retry-After"); got != tt.retry {
				t.Errorf("Retry-After %q, want %q", got, tt.retry)
			}
			var e api.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
			if e.Field != tt.field {
				t.Errorf("field %q, want %q (%s)", e.Field, tt.field, e.Error)
			}
			wantCode := tt.code
			if wantCode == "" {
				wantCode = api.CodeBadRequest
			}
			if e.Code != wantCode {
				t.Errorf("code %q, want %q", e.Code, wantCode)
			}
			if !strings.Contains(e.Error, tt.msg) {
				t.Errorf("message %q lacks %q", e.Error, tt.msg)
			}
			if tt.status < 500 && svc.lastSubmit != nil && tt.svcErr == nil {
				t.Error("service called with a request the handler should have rejected")
			}
		})
	}
}

func TestSubmitJobBodyLimit(t *testing.T) {
	h := newTestHandler(t, newFake())
	h.limits.MaxJobBody = 1 << 10
	req := validRequest()
	req.Tx = make([]byte, 2<<10)
	body, _ := json.Marshal(req)
	rec := serve(h, http.MethodPost, "/v1/jobs", body)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "exceeds 1024 bytes") {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}

// The client sees the server's errors as the sentinels the service returned.
func TestClientSubmitErrors(t *testing.T) {
	svc := newFake()
	c := newTestClient(t, newTestHandler(t, svc))
	ctx := context.Background()

	bad := validRequest()
	bad.InputData["a"][0] ^= 1
	_, err := c.SubmitJob(ctx, bad)
	var fe *api.FieldError
	if !errors.Is(err, api.ErrBadRequest) || !errors.As(err, &fe) || fe.Field != `input_data["a"]` || fe.Msg != "digest mismatch" {
		t.Errorf("digest mismatch: got %v (%#v)", err, fe)
	}

	svc.submitErr = fmt.Errorf("%w: balance 10 < budget 5000000", api.ErrInsufficientFunds)
	_, err = c.SubmitJob(ctx, validRequest())
	var re *api.ResponseError
	if !errors.Is(err, api.ErrInsufficientFunds) || !errors.As(err, &re) || re.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("insufficient funds: got %v", err)
	}
	if err.Error() != "insufficient funds: balance 10 < budget 5000000" {
		t.Errorf("message %q", err)
	}

	svc.submitErr = nil
	job, err := c.SubmitJob(ctx, validRequest())
	if err != nil || job.Status != api.StatusQueued {
		t.Fatalf("submit: %+v, %v", job, err)
	}
	if got, err := c.Job(ctx, job.ID); err != nil || got.ID != job.ID {
		t.Errorf("Job(%s) = %+v, %v", job.ID, got, err)
	}
}
