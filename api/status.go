package api

import (
	"errors"
	"net/http"
)

// Codes carried in Error.Code, one per status the API returns.
const (
	CodeBadRequest        = "bad_request"
	CodeInsufficientFunds = "insufficient_funds"
	CodeUnauthorized      = "unauthorized"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeUnavailable       = "unavailable"
	CodeTooManyRequests   = "too_many_requests"
	CodeInternal          = "internal"
)

// statuses pairs each sentinel with the HTTP status and code it travels as. The server reads
// it forwards (first sentinel an error wraps wins) and the client backwards (first sentinel
// with the status), so ErrBadRequest precedes ErrInvalidSpec.
var statuses = []struct {
	err    error
	status int
	code   string
}{
	{ErrBadRequest, http.StatusBadRequest, CodeBadRequest},
	{ErrInvalidSpec, http.StatusBadRequest, CodeBadRequest},
	{ErrInsufficientFunds, http.StatusPaymentRequired, CodeInsufficientFunds},
	{ErrUnauthorized, http.StatusUnauthorized, CodeUnauthorized},
	{ErrForbidden, http.StatusForbidden, CodeForbidden},
	{ErrNotFound, http.StatusNotFound, CodeNotFound},
	{ErrConflict, http.StatusConflict, CodeConflict},
	{ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	{ErrTooManyRequests, http.StatusTooManyRequests, CodeTooManyRequests},
}

// HTTPStatus returns the HTTP status and Error.Code that err travels as: those of the first
// sentinel it wraps, or 500 "internal".
func HTTPStatus(err error) (status int, code string) {
	for _, s := range statuses {
		if errors.Is(err, s.err) {
			return s.status, s.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// sentinelFor returns the sentinel a non-2xx status stands for, or nil. Statuses the server
// never sends directly map to their nearest kind: other 4xx (405, 413, …) to ErrBadRequest, and
// gateway failures in front of the server to ErrUnavailable.
func sentinelFor(status int) error {
	for _, s := range statuses {
		if s.status == status {
			return s.err
		}
	}
	switch {
	case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
		return ErrUnavailable
	case status >= 400 && status < 500:
		return ErrBadRequest
	}
	return nil
}
