package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
)

// A job submission may travel as multipart/form-data instead of JSON: the request, its
// input_data left out, as JSON in a part named "request", then each inline input's bytes as
// they are in a part named "input:NAME". That is a quarter smaller than base64 in JSON and
// costs neither side an encoding. (curl: -F 'request=@req.json;type=application/json'
// -F 'input:a=@A.npy'.)
const (
	SubmitPartRequest = "request"
	SubmitPartInput   = "input:"
)

// EncodeSubmitMultipart writes req as a multipart/form-data body and returns it with its
// Content-Type.
func EncodeSubmitMultipart(req SubmitJobRequest) ([]byte, string, error) {
	for name := range req.InputData {
		if !req.Spec.declares(name) {
			return nil, "", fmt.Errorf("%w: input_data %q is not declared in spec.inputs", ErrBadRequest, name)
		}
		if !validInputName(name) { // nothing of a header's syntax can ride in on a name
			return nil, "", fmt.Errorf("%w: input name %q is not 1-128 letters, digits, '.', '_' or '-'", ErrBadRequest, name)
		}
	}
	head := req
	head.InputData = nil
	js, err := json.Marshal(head)
	if err != nil {
		return nil, "", err
	}
	// A buffer of the body's size (the request, the inputs, and at most partOverhead for
	// each part's boundary and headers and for the closing boundary): one grown as the
	// inputs were written, and copied at each step, was most of what encoding cost.
	size := len(js) + (len(req.InputData)+2)*partOverhead
	for _, data := range req.InputData {
		size += len(data)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	w := multipart.NewWriter(buf)
	if err := writePart(w, SubmitPartRequest, "application/json", js); err != nil {
		return nil, "", err
	}
	for _, in := range req.Spec.Inputs { // in the spec's order, for a stable body
		if data, ok := req.InputData[in.Name]; ok {
			if err := writePart(w, SubmitPartInput+in.Name, "application/octet-stream", data); err != nil {
				return nil, "", err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// partOverhead bounds what a part adds to its data: its boundary line (a 60-character
// boundary) and its headers, with an input name of the longest (128 characters).
const partOverhead = 384

// writePart adds a form-data part; name is one of ours or an input's, valid, so it needs no
// escaping.
func writePart(w *multipart.Writer, name, contentType string, data []byte) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+name+`"`)
	h.Set("Content-Type", contentType)
	pw, err := w.CreatePart(h)
	if err != nil {
		return err
	}
	_, err = pw.Write(data)
	return err
}

// declares reports whether the spec declares an input of that name.
func (s JobSpec) declares(name string) bool {
	for _, in := range s.Inputs {
		if in.Name == name {
			return true
		}
	}
	return false
}

// DecodeSubmitMultipart reads a multipart/form-data submission with the given boundary: the
// "request" part first, then at most MaxInputs "input:NAME" parts, each name once. The
// caller bounds the body's size. Every error wraps ErrBadRequest, except the reader's own
// (a body over its limit, say).
func DecodeSubmitMultipart(body io.Reader, boundary string) (SubmitJobRequest, error) {
	var req SubmitJobRequest
	if boundary == "" {
		return req, fmt.Errorf("%w: multipart/form-data without a boundary", ErrBadRequest)
	}
	mr := multipart.NewReader(body, boundary)
	for n := 0; ; n++ {
		part, err := mr.NextRawPart() // as sent: no quoted-printable decoding
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return req, partError(err)
		}
		name := part.FormName()
		switch {
		case n == 0 && name != SubmitPartRequest:
			return req, fmt.Errorf("%w: the first part must be %q, the request as JSON; got %q", ErrBadRequest, SubmitPartRequest, name)
		case n == 0:
			dec := json.NewDecoder(part)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return req, partError(fmt.Errorf("part %q: %w", name, err))
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return req, partError(fmt.Errorf("part %q: unexpected data after the JSON", name))
			}
			if len(req.InputData) > 0 {
				return req, fmt.Errorf("%w: part %q carries input_data; send each input in its own %q part", ErrBadRequest, name, SubmitPartInput+"NAME")
			}
			req.InputData = map[string][]byte{}
		case !strings.HasPrefix(name, SubmitPartInput) || len(name) == len(SubmitPartInput):
			return req, fmt.Errorf("%w: part %q: want %q or %q", ErrBadRequest, name, SubmitPartRequest, SubmitPartInput+"NAME")
		default:
			in := strings.TrimPrefix(name, SubmitPartInput)
			if _, dup := req.InputData[in]; dup {
				return req, fmt.Errorf("%w: input %q sent twice", ErrBadRequest, in)
			}
			if len(req.InputData) == MaxInputs {
				return req, fmt.Errorf("%w: more than %d inputs", ErrBadRequest, MaxInputs)
			}
			data, err := readPart(part, req.Spec.declaredSize(in))
			if err != nil {
				return req, partError(fmt.Errorf("part %q: %w", name, err))
			}
			req.InputData[in] = data
		}
	}
	if req.InputData == nil {
		return req, fmt.Errorf("%w: no %q part", ErrBadRequest, SubmitPartRequest)
	}
	if len(req.InputData) == 0 {
		req.InputData = nil
	}
	return req, nil
}

// declaredSize is the size the spec declares for an input, or 0.
func (s JobSpec) declaredSize(name string) int64 {
	for _, in := range s.Inputs {
		if in.Name == name {
			return in.Size
		}
	}
	return 0
}

// readPart reads a part into a buffer of the size its input declares (within
// MaxInputBytes), so that a well-formed input is read in one allocation. (A bytes.Buffer
// of that size was not enough: its ReadFrom grows the buffer whenever less than 512 bytes
// are free, so an input whose end came in a Read of its own was copied into a second
// buffer of twice the size.) A part longer than declared is read to its end all the same,
// for checkSubmit to refuse by its size.
func readPart(r io.Reader, declared int64) ([]byte, error) {
	if declared <= 0 || declared > MaxInputBytes {
		return io.ReadAll(r)
	}
	buf := make([]byte, 0, declared+1) // +1: a part that ends where it says is seen to end
	for len(buf) < cap(buf) {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF { // as io.Reader returns it: never wrapped
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	rest, err := io.ReadAll(r)
	return append(buf, rest...), err
}

// partError wraps a malformed body's error in ErrBadRequest, and passes the body reader's
// own errors (its size limit, a deadline) through as they are.
func partError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBadRequest, err)
}
