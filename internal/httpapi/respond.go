package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/api"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only a broken invariant: the api types are plain data
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	writeEncoded(w, status, b)
}

// writeEncoded sends b, a value encoded as JSON, as writeJSON does (a newline is appended
// to b, which must be the caller's to spare).
func writeEncoded(w http.ResponseWriter, status int, b []byte) {
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError sends err as an api.Error with the status it maps to.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorBody(r, err)
	switch {
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", api.OutputAuthScheme) // required with 401 (RFC 9110)
	case errors.Is(err, errBusy), status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		after, ok := api.RetryDelay(err)
		switch {
		case ok:
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((after+time.Second-1)/time.Second))))
		case status != http.StatusServiceUnavailable || errors.Is(err, errBusy):
			w.Header().Set("Retry-After", "1") // about a block
		}
	}
	writeJSON(w, status, body)
}

// errorBody maps err to a status and body: body-reading failures to 408, 413 and 415, api
// sentinels through api.HTTPStatus, field errors name their field, and anything
// unrecognised is a logged 500.
func (s *server) errorBody(r *http.Request, err error) (int, api.Error) {
	var (
		tooBig   *http.MaxBytesError
		badMedia *mediaTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, api.Error{
			Error: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit),
			Code:  api.CodeBadRequest,
		}
	case errors.As(err, &badMedia):
		return http.StatusUnsupportedMediaType, api.Error{Error: badMedia.Error(), Code: api.CodeBadRequest}
	case bodyTimedOut(r): // whatever the handler or service made of it
		return http.StatusRequestTimeout, api.Error{
			Error: fmt.Sprintf("request body too slow: each read must bring bytes within %s, at %d bytes/s on average",
				s.limits.BodyIdleTimeout, s.limits.MinBodyRate),
			Code: api.CodeBadRequest,
		}
	}
	status, code := api.HTTPStatus(err)
	body := api.Error{Error: err.Error(), Code: code}
	var fe *api.FieldError
	if errors.As(err, &fe) {
		body.Field = fe.Field
	}
	if status == http.StatusInternalServerError {
		s.log.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	return status, body
}

// bodyTimedOut reports whether r's body failed because the client sent it too slowly.
func bodyTimedOut(r *http.Request) bool {
	br, ok := r.Body.(*bodyReader)
	return ok && errors.Is(br.err, os.ErrDeadlineExceeded)
}

// mediaTypeError is a request body of a type the route does not take (415).
type mediaTypeError struct{ got, want string }

func (e *mediaTypeError) Error() string {
	if e.got == "" {
		return "Content-Type is missing: send " + e.want
	}
	return fmt.Sprintf("Content-Type %q is not accepted here: send %s", e.got, e.want)
}

// requireMediaType checks r's Content-Type: want, with any parameters, except that JSON
// must be UTF-8 (RFC 8259).
func requireMediaType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == want {
		if cs, ok := params["charset"]; want != "application/json" || !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return &mediaTypeError{got: ct, want: want}
}

// readJSON decodes r's body of at most limit bytes into dst (see decodeJSON). It first
// reserves the body's length (the limit when unknown) from the server's body budget and
// holds it until the caller calls release, once it no longer holds what it decoded: the
// decoded value is about as large as the body.
func (s *server) readJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) (release func(), err error) {
	if err := requireMediaType(r, "application/json"); err != nil {
		return nil, err
	}
	if release, err = s.reserveBody(r, limit); err != nil {
		return nil, err
	}
	if err := decodeJSON(w, r, limit, dst); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// reserveBody refuses a body declared longer than limit, unread (the server closes the
// connection), and reserves its length (the limit when unknown) from the server's body
// budget until the caller releases it.
func (s *server) reserveBody(r *http.Request, limit int64) (release func(), err error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	size := limit
	if r.ContentLength >= 0 {
		size = r.ContentLength
	}
	return s.budget.reserve(r.Context(), size, s.limits.BudgetWait)
}

// decodeJSON decodes exactly one JSON value of at most limit bytes, rejecting unknown fields,
// and says what is wrong in terms a client can act on.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		return fmt.Errorf("%w: unexpected data after the JSON body", api.ErrBadRequest)
	}
	return nil
}

func jsonError(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		unknown = strings.HasPrefix(err.Error(), "json: unknown field ")
	)
	switch {
	case errors.As(err, &tooBig), errors.Is(err, os.ErrDeadlineExceeded):
		return err
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: request body is empty", api.ErrBadRequest)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: request body is truncated JSON", api.ErrBadRequest)
	case errors.As(err, &syntax):
		return fmt.Errorf("%w: invalid JSON at byte %d: %s", api.ErrBadRequest, syntax.Offset, syntax)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("%w: body must be a JSON object, not %s", api.ErrBadRequest, typ.Value)
	case errors.As(err, &typ):
		return &api.FieldError{Field: typ.Field, Msg: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.String()), typ.Value)}
	case unknown:
		// encoding/json has no typed error for this; its message is stable
		name, qerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if qerr == nil {
			return &api.FieldError{Field: name, Msg: "unknown field"}
		}
	}
	return fmt.Errorf("%w: invalid JSON body: %s", api.ErrBadRequest, strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type as a client writing JSON thinks of it.
func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]uint8"):
		return "a base64 string"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.Contains(goType, "."):
		return "an object"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	}
	return "a number (" + goType + ")"
}

func lowerStatusText(status int) string { return strings.ToLower(http.StatusText(status)) }
