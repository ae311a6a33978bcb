package api

import "errors"

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
