package api

import (
	"errors"
	"time"
)

// Sentinels that services wrap and the REST layer maps to HTTP statuses; the Go client
// wraps them again from the status it receives, so errors.Is works on both sides.
var (
	ErrNotFound          = errors.New("not found")           // 404
	ErrInsufficientFunds = errors.New("insufficient funds")  // 402
	ErrConflict          = errors.New("conflict")            // 409
	ErrUnauthorized      = errors.New("unauthorized")        // 401: missing, malformed, expired or badly signed credentials
	ErrForbidden         = errors.New("forbidden")           // 403: a known signer that may not do this
	ErrUnavailable       = errors.New("service unavailable") // 503
	ErrTooManyRequests   = errors.New("too many requests")   // 429: retry after the Retry-After header
	ErrBadRequest        = errors.New("bad request")         // 400 (ErrInvalidSpec too)
)

// RetryIn wraps err, a refusal that wraps ErrTooManyRequests or ErrUnavailable, with how
// long to wait before sending the same request again; the REST server sends it as the
// Retry-After header, in whole seconds (at least one).
func RetryIn(err error, after time.Duration) error { return &retryLater{err, after} }

type retryLater struct {
	error
	after time.Duration
}

func (e *retryLater) Unwrap() error { return e.error }

// RetryDelay is the wait RetryIn attached to err, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var rl *retryLater
	if errors.As(err, &rl) {
		return rl.after, true
	}
	return 0, false
}
