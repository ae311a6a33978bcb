package transport

import (
	"errors"
	"runtime"
	"testing"
	"time"
)

// A participant's declared size is a claim, not a fact: mallory, a node built from this
// package's client but not following it, stores blobs whose size she misdeclares, in one
// store or in an upload, and leaves uploads unfinished. Each attempt fails with an error
// that says so; nothing is stored, not even a chunk; the service lets go of the name and
// the upload (one left unfinished, after its idle time, refusing any chunk sent later);
// and a tebibyte declared is never reserved. Her grant is as large as a router may give,
// so what stops her is the service's own checks.
func TestBlobServiceTrustsNoDeclaredSize(t *testing.T) {
	n := startTestNet(t, "mallory")
	svc := n.srv.blobs
	svc.mu.Lock()
	svc.idle = 200 * time.Millisecond
	svc.mu.Unlock()
	ctx := t.Context()
	adminJS := n.adminJS(t)
	st, err := adminJS.Stream(ctx, objectStream(testBucket))
	if err != nil {
		t.Fatal(err)
	}
	mallory := n.blobs(n.dialNode(t, "mallory", nil), "mallory")
	n.access.AllowWrite("mallory", "job", 1<<41)
	// held is what the service still holds for a write: uploads open, names being written.
	held := func() int {
		svc.mu.Lock()
		defer svc.mu.Unlock()
		return len(svc.uploads) + len(svc.writing)
	}
	// maxAlloc bounds what the whole process may allocate for one attempt: far below a
	// tebibyte, and above the few MiB that carrying her bytes takes.
	const maxAlloc = 64 << 20

	for _, c := range []struct {
		name     string
		upload   bool // a put and its data messages, else one store
		declared int64
		sent     []byte
		want     error
	}{
		{"store: a tebibyte declared, 16 KiB sent", false, 1 << 40, randomBytes(16<<10, 80), ErrInvalidDigest},
		{"store: fewer bytes declared than sent", false, 16<<10 - 1, randomBytes(16<<10, 81), ErrInvalidDigest},
		{"store: more bytes declared than sent", false, uploadChunk, randomBytes(200<<10, 82), ErrInvalidDigest},
		{"upload: a tebibyte declared, 16 KiB sent, then nothing", true, 1 << 40, randomBytes(16<<10, 83), ErrBlob},
		{"upload: fewer bytes declared than sent", true, uploadChunk + 1, randomBytes(2*uploadChunk, 84), ErrDigestMismatch},
		{"upload: more bytes declared than sent, then nothing", true, 3 * uploadChunk, randomBytes(uploadChunk+1, 85), ErrBlob},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The digest of what she declares: where she sends more, its first bytes are true.
			digest := Digest(c.sent[:min(c.declared, int64(len(c.sent)))])
			req := blobRequest{Bucket: testBucket, Job: "job", Digest: digest, Size: c.declared}
			chunks := storedChunks(t, st)
			var mem runtime.MemStats
			runtime.ReadMemStats(&mem)
			allocated := mem.TotalAlloc

			var upload string
			if c.upload {
				r, err := mallory.call(ctx, mallory.subject(blobVerbPut), req)
				if err != nil || r.Upload == "" {
					t.Fatalf("put: %+v, %v; want an upload opened", r, err)
				}
				upload = r.Upload
				err = mallory.send(ctx, upload, c.sent)
				if !errors.Is(err, c.want) {
					t.Fatalf("upload: %v, want %v", err, c.want)
				}
			} else if _, err := mallory.store(ctx, req, c.sent); !errors.Is(err, c.want) {
				t.Fatalf("store: %v, want %v", err, c.want)
			}
			for deadline := time.Now().Add(10 * time.Second); held() != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the service still holds %d uploads and names", held())
				}
			}
			if c.upload {
				if _, err := mallory.request(ctx, mallory.subject(blobVerbData)+"."+upload, c.sent[:1]); !errors.Is(err, ErrNotFound) {
					t.Fatalf("a chunk sent after the upload ended: %v, want ErrNotFound", err)
				}
			}

			runtime.ReadMemStats(&mem)
			if a := mem.TotalAlloc - allocated; a > maxAlloc {
				t.Fatalf("%d MiB allocated for %d bytes sent; want at most %d MiB", a>>20, len(c.sent), maxAlloc>>20)
			}
			if _, err := GetBlob(ctx, adminJS, testBucket, digest); !errors.Is(err, ErrNotFound) {
				t.Fatalf("reading the blob after: %v, want ErrNotFound", err)
			}
			if got := storedChunks(t, st); got != chunks {
				t.Fatalf("%d chunks stored after, want the %d before", got, chunks)
			}
		})
	}
}
