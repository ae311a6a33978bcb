package node

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/omnisync/omnisync/internal/protocol"
)

// The stream sends whole chunks at once and the rest after a pause, each at its offset,
// so the chunks put together are the log; the last one says so.
func TestLogStreamChunksAtOffsets(t *testing.T) {
	var mu sync.Mutex
	var got []protocol.LogChunk
	l := &logStream{job: "j", id: "n", publish: func(c protocol.LogChunk) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}}
	big := bytes.Repeat([]byte("0123456789abcdef"), protocol.MaxLogChunk/16+100) // a chunk and 1600 bytes
	_, _ = l.Write(big)
	mu.Lock()
	if len(got) != 1 || got[0].Offset != 0 || len(got[0].Data) != protocol.MaxLogChunk {
		t.Fatalf("a full chunk is sent at once: %d chunks", len(got))
	}
	mu.Unlock()
	_, _ = l.Write([]byte("tail\n"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Close()
	_, _ = l.Write([]byte("after the end"))
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || !got[2].EOF || got[1].EOF {
		t.Fatalf("chunks %d, want the rest after a pause and an empty EOF", len(got))
	}
	var all []byte
	for _, c := range got {
		if c.Offset != int64(len(all)) {
			t.Fatalf("chunk at %d, want %d", c.Offset, len(all))
		}
		all = append(all, c.Data...)
	}
	if !bytes.Equal(all, append(big, "tail\n"...)) {
		t.Fatal("the chunks do not add up to the log")
	}
}
