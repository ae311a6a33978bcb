package transport

import "errors"

// Sentinel errors; every error returned by this package wraps one of them (or a
// context error) so callers can test with errors.Is.
var (
	// ErrInvalidOptions reports a bad ServerOptions or DialOptions value.
	ErrInvalidOptions = errors.New("invalid transport options")
	// ErrTLS reports unusable or inconsistent TLS material.
	ErrTLS = errors.New("tls material")
	// ErrServer reports a failure to start or run the embedded server.
	ErrServer = errors.New("nats server")
	// ErrUnauthorized means the server rejected the client's key.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrConnect means a connection could not be established.
	ErrConnect = errors.New("connect failed")
	// ErrPermissionDenied wraps asynchronous permission violations passed to
	// DialOptions.OnError.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrInvalidDigest means a digest string is not "sha256:" + 64 lowercase hex.
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrNotFound means a blob or its bucket does not exist.
	ErrNotFound = errors.New("blob not found")
	// ErrDigestMismatch means stored content does not hash to its digest.
	ErrDigestMismatch = errors.New("blob digest mismatch")
	// ErrForbidden means the blob service refused a participant the blob: it holds no
	// right to it for any job it serves now.
	ErrForbidden = errors.New("blob access forbidden")
	// ErrBusy means another upload of the same blob is under way.
	ErrBusy = errors.New("blob busy")
	// ErrUnavailable means the blob store's stream did not answer in time, as while its
	// servers elect a leader: the same request may succeed a moment later.
	ErrUnavailable = errors.New("blob store unavailable")
	// ErrBlob reports any other object-store failure.
	ErrBlob = errors.New("blob store")
)
