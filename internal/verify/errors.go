package verify

import "errors"

var (
	// ErrInvalidArgument reports misuse by the caller, such as rounds < 1 or
	// kernel inputs that are themselves malformed. It never blames the
	// prover: a wrong output is a failed Verdict, not an error.
	ErrInvalidArgument = errors.New("invalid verification request")
	// ErrUnknownKernel reports a kernel this package has no check for.
	ErrUnknownKernel = errors.New("no check for kernel")
)
