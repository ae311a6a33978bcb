package docker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadLogStream is returned by Demux for bytes that are not a Docker multiplexed stream.
var ErrBadLogStream = errors.New("malformed docker log stream")

// Stream identifiers in the header of each frame of a multiplexed stream.
const (
	streamStdin  = 0
	streamStdout = 1
	streamStderr = 2
	streamSystem = 3 // an error from the engine itself (API 1.42 and later)
)

// Demux splits a Docker multiplexed stream (a container without a TTY: each frame an 8-byte
// header — stream id, three zero bytes, big-endian payload length — then the payload) into
// stdout and stderr. Payloads are copied through, never buffered whole, so a header that
// claims 4 GiB costs no memory. It returns nil at a clean end of stream.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%w: header: %v", ErrBadLogStream, err)
		}
		if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 {
			return fmt.Errorf("%w: header % x", ErrBadLogStream, hdr)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w io.Writer
		switch hdr[0] {
		case streamStdin, streamStdout:
			w = stdout
		case streamStderr:
			w = stderr
		case streamSystem:
			msg, _ := io.ReadAll(io.LimitReader(r, min(n, 4096)))
			return fmt.Errorf("docker engine: %s", msg)
		default:
			return fmt.Errorf("%w: stream id %d", ErrBadLogStream, hdr[0])
		}
		if got, err := io.CopyN(w, r, n); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("%w: payload (%d of %d bytes): %v", ErrBadLogStream, got, n, err)
		}
	}
}
