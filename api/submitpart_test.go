package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func multipartRequest() SubmitJobRequest {
	a, b := []byte("first input"), []byte{0, 1, 2, 255}
	return SubmitJobRequest{
		Spec: JobSpec{
			Workload: Workload{Kind: WorkloadTensor, Kernel: "matmul-int8"},
			Inputs: []Input{
				{Name: "a", Digest: DigestOf(a), Size: int64(len(a))},
				{Name: "b.npy", Digest: DigestOf(b), Size: int64(len(b))},
				{Name: "uploaded-later", Digest: DigestOf(nil), Size: 0},
			},
			Budget: 1,
		},
		InputData: map[string][]byte{"a": a, "b.npy": b},
		Tx:        []byte("signed tx"),
	}
}

func TestSubmitMultipartRoundTrip(t *testing.T) {
	for _, want := range []SubmitJobRequest{multipartRequest(), {Spec: multipartRequest().Spec, Tx: []byte{1}}} {
		body, ct, err := EncodeSubmitMultipart(want)
		if err != nil {
			t.Fatal(err)
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || mt != "multipart/form-data" {
			t.Fatalf("content type %q: %v", ct, err)
		}
		got, err := DecodeSubmitMultipart(bytes.NewReader(body), params["boundary"])
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip: %+v, %v; want %+v", got, err, want)
		}
	}
	bad := multipartRequest()
	bad.InputData["nope"] = []byte("x")
	if _, _, err := EncodeSubmitMultipart(bad); err == nil {
		t.Fatal("an undeclared input was encoded")
	}
	bad = multipartRequest()
	bad.Spec.Inputs[0].Name = "a\r\nContent-Type: text/html"
	bad.InputData = map[string][]byte{bad.Spec.Inputs[0].Name: []byte("x")}
	if _, _, err := EncodeSubmitMultipart(bad); err == nil {
		t.Fatal("a name with a line break was encoded into a part's header")
	}
}

// A body is written into a buffer of its size, give or take its parts' headers, not one
// grown (and copied) as the inputs are written: here with the longest input names.
func TestEncodeSubmitMultipartSizesItsBuffer(t *testing.T) {
	req := SubmitJobRequest{InputData: map[string][]byte{}, Tx: []byte("signed tx")}
	for i := range MaxInputs {
		name := fmt.Sprintf("%0128d", i)
		data := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
		req.InputData[name] = data
		req.Spec.Inputs = append(req.Spec.Inputs, Input{Name: name, Digest: DigestOf(data), Size: int64(len(data))})
	}
	body, _, err := EncodeSubmitMultipart(req)
	if err != nil {
		t.Fatal(err)
	}
	if spare := cap(body) - len(body); spare > (len(req.InputData)+2)*partOverhead {
		t.Fatalf("a body of %d bytes in a buffer of %d", len(body), cap(body))
	}
}

// FuzzDecodeSubmitMultipart: any body decodes to a request or to an error, never a panic,
// and a decoded request with its inputs declared encodes and decodes to itself.
func FuzzDecodeSubmitMultipart(f *testing.F) {
	body, ct, _ := EncodeSubmitMultipart(multipartRequest())
	_, params, _ := mime.ParseMediaType(ct)
	f.Add(body, params["boundary"])
	f.Add([]byte("--x\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n{}\r\n--x--\r\n"), "x")
	f.Add([]byte("--x\r\n\r\n--x--"), "x")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		req, err := DecodeSubmitMultipart(bytes.NewReader(body), boundary)
		if err != nil {
			return
		}
		if len(req.InputData) > MaxInputs {
			t.Fatalf("%d inputs decoded", len(req.InputData))
		}
		again, ct, err := EncodeSubmitMultipart(req)
		if err != nil {
			return // an input the spec does not declare: checkSubmit's to refuse
		}
		_, params, _ := mime.ParseMediaType(ct)
		back, err := DecodeSubmitMultipart(bytes.NewReader(again), params["boundary"])
		if err != nil || !reflect.DeepEqual(back, req) {
			t.Fatalf("re-encoded request decodes to %+v, %v; want %+v", back, err, req)
		}
	})
}

// BenchmarkSubmitDecode decodes one submission carrying two inputs of the given size as
// JSON (base64 inputs, as the server did for every submission) and as multipart, in the
// same run, and reports the body sizes.
func BenchmarkSubmitDecode(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		req := multipartRequest()
		for i, name := range []string{"a", "b.npy"} {
			data := bytes.Repeat([]byte{byte(i + 1), 0x80, 0x7f}, size/3+1)[:size]
			req.InputData[name] = data
			req.Spec.Inputs[i].Size, req.Spec.Inputs[i].Digest = int64(size), DigestOf(data)
		}
		js, _ := json.Marshal(req)
		mp, ct, _ := EncodeSubmitMultipart(req)
		_, params, _ := mime.ParseMediaType(ct)
		b.Run(fmt.Sprintf("json/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(js)))
			for range b.N {
				var got SubmitJobRequest
				if err := json.Unmarshal(js, &got); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("multipart/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(mp)))
			for range b.N {
				if _, err := DecodeSubmitMultipart(bytes.NewReader(mp), params["boundary"]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// readPart reads an input of its declared size in one allocation, and a part of any other
// size, or one cut short by an error, as it is.
func TestReadPart(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 4096)
	if allocs := testing.AllocsPerRun(100, func() {
		if got, err := readPart(bytes.NewReader(data), int64(len(data))); err != nil || len(got) != len(data) {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
	}); allocs > 2 { // the buffer, and the bytes.Reader made for the call
		t.Fatalf("%v allocations to read an input of its declared size", allocs)
	}
	for _, tc := range []struct {
		name     string
		size     int
		declared int64
	}{{"declared", 4096, 4096}, {"shorter", 100, 4096}, {"longer", 5000, 4096}, {"much longer", 20000, 1}, {"undeclared", 300, 0}, {"empty", 0, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			want := bytes.Repeat([]byte{1, 2, 3}, tc.size)[:tc.size]
			got, err := readPart(iotest.OneByteReader(bytes.NewReader(want)), tc.declared)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(want))
			}
		})
	}
	broken := errors.New("broken body")
	got, err := readPart(io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(broken)), 4096)
	if !errors.Is(err, broken) || len(got) != 10 {
		t.Fatalf("read %d bytes, %v; want 10 and the body's error", len(got), err)
	}
	if _, err := readPart(iotest.ErrReader(io.ErrUnexpectedEOF), 4096); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a body cut short read as %v", err)
	}
}

// A job submitted with two 4 KiB inputs, as the devnet's consumers submit them, goes out
// in one write of the connection, not one for each 4 KiB (see writeBufferSize).
func TestSubmitJobGoesOutInOneWrite(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"j1"}`)
	}))
	defer srv.Close()
	var writes atomic.Int64
	c := countingClient(srv.URL, &writes)
	defer c.HTTP.Transport.(*http.Transport).CloseIdleConnections()
	if _, err := c.SubmitJob(context.Background(), fourKiBInputs()); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("the submission took %d writes, want 1", n)
	}
}

// fourKiBInputs is a submission with two 4 KiB inputs, a 64×64 int8 matmul's.
func fourKiBInputs() SubmitJobRequest {
	a, b := bytes.Repeat([]byte{1}, 4<<10), bytes.Repeat([]byte{2}, 4<<10)
	req := multipartRequest()
	req.Spec.Inputs = []Input{{Name: "a", Digest: DigestOf(a), Size: 4 << 10}, {Name: "b", Digest: DigestOf(b), Size: 4 << 10}}
	req.InputData = map[string][]byte{"a": a, "b": b}
	return req
}

// countingClient is a client of url on a pool of its own, of the shared pool's settings,
// that counts its connections' writes.
func countingClient(url string, writes *atomic.Int64) *Client {
	tr := transport.Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCounter{conn, writes}, nil
	}
	c := NewClient(url)
	c.HTTP = &http.Client{Transport: tr}
	return c
}

// writeCounter counts its connection's writes.
type writeCounter struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkSubmitJobOverHTTP submits a job with two 4 KiB inputs, as the devnet's
// consumers do, over loopback, its connection writing through net/http's default 4 KiB
// buffer or writeBufferSize.
func BenchmarkSubmitJobOverHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if _, err := DecodeSubmitMultipart(r.Body, params["boundary"]); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"j1"}`)
	}))
	defer srv.Close()
	req := fourKiBInputs()
	for _, size := range []int{4 << 10, writeBufferSize} {
		b.Run(fmt.Sprintf("write-buffer-%dKiB", size>>10), func(b *testing.B) {
			var writes atomic.Int64
			c := countingClient(srv.URL, &writes)
			c.HTTP.Transport.(*http.Transport).WriteBufferSize = size
			defer c.HTTP.Transport.(*http.Transport).CloseIdleConnections()
			ctx := context.Background()
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, err := c.SubmitJob(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(writes.Load())/float64(b.N), "writes/op")
		})
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
