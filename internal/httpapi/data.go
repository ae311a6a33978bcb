package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/omnisync/omnisync/api"
)

// uploadInput streams the body to Service.UploadInput, never holding more than a read's
// worth of it: the service checks size and digest as it stores. Each upload reserves one
// read's worth from the body budget, so however many clients upload at once, this layer's
// memory stays within it.
func (s *server) uploadInput(w http.ResponseWriter, r *http.Request) {
	if err := requireMediaType(r, "application/octet-stream"); err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.ContentLength > api.MaxUploadBytes {
		s.writeError(w, r, &http.MaxBytesError{Limit: api.MaxUploadBytes})
		return
	}
	release, err := s.budget.reserve(r.Context(), uploadChunk, s.limits.BudgetWait)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()
	body := &readErr{r: http.MaxBytesReader(w, r.Body, api.MaxUploadBytes)}
	err = s.svc.UploadInput(r.Context(), r.PathValue("id"), r.PathValue("name"), body)
	// A body past the cap explains the service's error better than the service can (it
	// may not have wrapped the read error); a body too slow, errorBody sees for itself.
	var tooBig *http.MaxBytesError
	if err != nil && errors.As(body.err, &tooBig) {
		err = body.err
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readErr remembers the first error its reader returned.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// jobOutput serves a job's output to its consumer, who proves who it is with a signed,
// short-lived Authorization header (api.OutputAuth); the service checks it. The bytes are
// served only if they match the digest they are served under, and say whether the chain
// has verified them.
func (s *server) jobOutput(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	auth, ok := s.signedBy(w, r)
	if !ok {
		return
	}
	out, err := s.svc.JobOutput(r.Context(), id, auth)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if api.DigestOf(out.Data) != out.Digest {
		s.writeError(w, r, fmt.Errorf("output of job %s does not match its digest %s", id, out.Digest)) // 500, logged
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(out.Data)))
	h.Set("Cache-Control", "no-store") // the consumer's data: no shared cache may keep it
	h.Set(api.HeaderDigest, out.Digest)
	h.Set(api.HeaderVerified, strconv.FormatBool(out.Verified))
	h.Set(api.HeaderJobStatus, out.Status)
	if !out.Verified {
		h.Set(api.HeaderWarning, api.UnverifiedWarning)
	}
	// A large output may take longer than WriteTimeout to send: allow it the minimum rate.
	l := s.limits
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(l.WriteTimeout +
		time.Duration(float64(len(out.Data))/float64(l.MinBodyRate)*float64(time.Second))))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Data)
}

// jobLogs is GET /v1/jobs/{id}/logs?node=&from=, signed as an output request is.
func (s *server) jobLogs(w http.ResponseWriter, r *http.Request) {
	auth, ok := s.signedBy(w, r)
	if !ok {
		return
	}
	var from int64
	var err error
	if f := r.URL.Query().Get("from"); f != "" {
		if from, err = strconv.ParseInt(f, 10, 64); err != nil || from < 0 {
			s.writeError(w, r, &api.FieldError{Field: "from", Msg: fmt.Sprintf("%q: want a position in the log, 0 or more", f)})
			return
		}
	}
	logs, err := s.svc.JobLogs(r.Context(), r.PathValue("id"), auth, r.URL.Query().Get("node"), from)
	if err == nil {
		w.Header().Set("Cache-Control", "no-store") // the consumer's data
	}
	s.reply(w, r, logs, err)
}

// signedBy reads a request's one OmniSig Authorization header (its signature is the
// service's to check); on a missing, repeated or malformed one it writes the 401 and
// reports false.
func (s *server) signedBy(w http.ResponseWriter, r *http.Request) (api.OutputAuth, bool) {
	if headers := r.Header.Values("Authorization"); len(headers) > 1 {
		s.writeError(w, r, fmt.Errorf("%w: authorization header given %d times", api.ErrUnauthorized, len(headers)))
		return api.OutputAuth{}, false
	}
	auth, err := api.ParseOutputAuth(r.Header.Get("Authorization"))
	if err != nil {
		s.writeError(w, r, err)
		return api.OutputAuth{}, false
	}
	return auth, true
}
