package ledger

import (
	"errors"
	"fmt"
)

// Code is the result code of a transaction; 0 is success. Codes are part of the protocol:
// never renumber them.
type Code uint32

// Result codes, one per rejection sentinel.
const (
	CodeOK Code = iota
	CodeDecode
	CodeBadSignature
	CodeWrongChain
	CodeWrongSequence
	CodeInsufficientFunds
	CodeInvalidAmount
	CodeUnauthorized
	CodeNotFound
	CodeBadState
	CodeStakeTooLow
	CodeOverflow
	CodeInvalidMsg
	CodeDuplicate
	CodeInternal
	CodeLocked
	CodeTooManyPending
)

// Sentinel errors; every rejection wraps exactly one of these.
var (
	ErrDecode            = errors.New("malformed transaction")
	ErrBadSignature      = errors.New("bad signature")
	ErrWrongChain        = errors.New("wrong chain id")
	ErrWrongSequence     = errors.New("wrong sequence")
	ErrInsufficientFunds = errors.New("insufficient funds")
	ErrInvalidAmount     = errors.New("invalid amount")
	ErrUnauthorized      = errors.New("unauthorized")
	ErrNotFound          = errors.New("not found")
	ErrBadState          = errors.New("bad state")
	ErrStakeTooLow       = errors.New("stake too low")
	ErrOverflow          = errors.New("amount overflow")
	ErrInvalidMsg        = errors.New("invalid message")
	ErrDuplicate         = errors.New("duplicate")
	ErrLocked            = errors.New("tokens locked by vesting")
	ErrTooManyPending    = errors.New("too many pending transactions")
)

var codeOf = []struct {
	err  error
	code Code
}{
	{ErrDecode, CodeDecode}, {ErrBadSignature, CodeBadSignature}, {ErrWrongChain, CodeWrongChain},
	{ErrWrongSequence, CodeWrongSequence}, {ErrInsufficientFunds, CodeInsufficientFunds},
	{ErrInvalidAmount, CodeInvalidAmount}, {ErrUnauthorized, CodeUnauthorized},
	{ErrNotFound, CodeNotFound}, {ErrBadState, CodeBadState}, {ErrStakeTooLow, CodeStakeTooLow},
	{ErrOverflow, CodeOverflow}, {ErrInvalidMsg, CodeInvalidMsg}, {ErrDuplicate, CodeDuplicate}, {ErrLocked, CodeLocked},
	{ErrTooManyPending, CodeTooManyPending},
}

// CodeFor maps an error to its result code; unknown errors are CodeInternal.
func CodeFor(err error) Code {
	if err == nil {
		return CodeOK
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// ErrorFor rebuilds a sentinel-wrapping error from a result code and log, so clients of the
// chain can use errors.Is on results they only saw as numbers.
func ErrorFor(code Code, log string) error {
	if code == CodeOK {
		return nil
	}
	for _, c := range codeOf {
		if c.code == code {
			if log == "" {
				return c.err
			}
			return &codeError{sentinel: c.err, log: log}
		}
	}
	return fmt.Errorf("code %d: %s", code, log)
}

type codeError struct {
	sentinel error
	log      string
}

func (e *codeError) Error() string { return e.log }
func (e *codeError) Unwrap() error { return e.sentinel }
