package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// muxFrame encodes one frame of a multiplexed stream.
func muxFrame(stream byte, p []byte) []byte {
	out := make([]byte, 8, 8+len(p))
	out[0] = stream
	binary.BigEndian.PutUint32(out[4:], uint32(len(p)))
	return append(out, p...)
}

func TestDemux(t *testing.T) {
	stream := bytes.Join([][]byte{
		muxFrame(streamStdout, []byte("out1 ")), muxFrame(streamStderr, []byte("err1")),
		muxFrame(streamStdout, nil), muxFrame(streamStdout, []byte("out2")),
	}, nil)
	var out, errs bytes.Buffer
	if err := Demux(bytes.NewReader(stream), &out, &errs); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1 out2" || errs.String() != "err1" {
		t.Errorf("stdout %q stderr %q", out.String(), errs.String())
	}
	for name, bad := range map[string][]byte{
		"short header":   stream[:3],
		"short payload":  muxFrame(streamStdout, []byte("abc"))[:10],
		"bad stream id":  muxFrame(9, []byte("x")),
		"nonzero pad":    {1, 1, 0, 0, 0, 0, 0, 0},
		"huge and short": {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 'a'},
	} {
		if err := Demux(bytes.NewReader(bad), &out, &errs); !errors.Is(err, ErrBadLogStream) {
			t.Errorf("%s: err = %v, want ErrBadLogStream", name, err)
		}
	}
	if err := Demux(bytes.NewReader(muxFrame(streamSystem, []byte("boom"))), &out, &errs); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("system frame: %v", err)
	}
}

// FuzzDemux checks that arbitrary bytes never panic the demultiplexer, and that any bytes
// framed as stdout and stderr come back split exactly as they went in.
func FuzzDemux(f *testing.F) {
	f.Add([]byte("hello"), []byte("world"), []byte{1, 0, 0, 0, 0, 0, 0, 1, 'x'})
	f.Add([]byte{}, []byte{}, []byte{2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, out, errb, raw []byte) {
		var o, e bytes.Buffer
		_ = Demux(bytes.NewReader(raw), &o, &e)
		if o.Len()+e.Len() > len(raw) {
			t.Fatalf("demuxed %d bytes from %d", o.Len()+e.Len(), len(raw))
		}
		o.Reset()
		e.Reset()
		stream := append(muxFrame(streamStdout, out), muxFrame(streamStderr, errb)...)
		if err := Demux(bytes.NewReader(stream), &o, &e); err != nil || !bytes.Equal(o.Bytes(), out) || !bytes.Equal(e.Bytes(), errb) {
			t.Fatalf("round trip: %v, %q %q", err, o.Bytes(), e.Bytes())
		}
	})
}

// FuzzJSONMessages feeds the engine's progress-stream reader arbitrary bytes.
func FuzzJSONMessages(f *testing.F) {
	f.Add([]byte(`{"stream":"Loaded image: a:b\n"}{"error":"boom","errorDetail":{"message":"boom"}}`))
	f.Add([]byte(`{"stream":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := jsonMessages(bytes.NewReader(data))
		if err == nil && len(lines) > len(data) {
			t.Fatalf("%d lines from %d bytes", len(lines), len(data))
		}
	})
}
