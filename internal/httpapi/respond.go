package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/omnisync/omnisync/api"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only a broken invariant: the api types are plain data
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error","code":"internal"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError sends err as an api.Error with the status it maps to.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorBody(r, err)
	writeJSON(w, status, body)
}

// errorBody maps err to a status and body: api sentinels through api.HTTPStatus, field errors
// name their field, and anything unrecognised is a logged 500.
func (s *server) errorBody(r *http.Request, err error) (int, api.Error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, api.Error{
			Error: fmt.Sprintf("request body exceeds %d bytes", tooBig.Limit),
			Code:  api.CodeBadRequest,
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
		if errors.As(err, &tooBig) {
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
	case errors.As(err, &tooBig):
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
