package api

import "errors"

// Sentinels that services wrap and the REST layer maps to HTTP statuses; the Go client
// wraps them again from the status it receives, so errors.Is works on both sides.
var (
	ErrNotFound          = errors.New("not found")           // 404
	ErrInsufficientFunds = errors.New("insufficient funds")  // 402
	ErrConflict          = errors.New("conflict")            // 409
	ErrUnauthorized      = errors.New("unauthorized")        // 403
	ErrUnavailable       = errors.New("service unavailable") // 503
	ErrBadRequest        = errors.New("bad request")         // 400 (ErrInvalidSpec too)
)
