package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	testNow = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	seedA   = bytes.Repeat([]byte{1}, ed25519.SeedSize)
	seedB   = bytes.Repeat([]byte{2}, ed25519.SeedSize)
)

func TestVerifyOutputAuth(t *testing.T) {
	key, other := ed25519.NewKeyFromSeed(seedA), ed25519.NewKeyFromSeed(seedB)
	pub := key.Public().(ed25519.PublicKey)
	sign := func(ttl time.Duration) OutputAuth { return SignOutputAuth(key, "omni1consumer", "job-1", ttl, testNow) }
	tests := []struct {
		name  string
		auth  OutputAuth
		pub   ed25519.PublicKey
		jobID string
		now   time.Time
		msg   string // "" means valid
	}{
		{name: "valid", auth: sign(5 * time.Minute)},
		{name: "valid at the longest ttl", auth: sign(MaxOutputAuthTTL)},
		{name: "valid a second before expiry", auth: sign(time.Minute), now: testNow.Add(59 * time.Second)},
		{name: "expired", auth: sign(time.Minute), now: testNow.Add(time.Minute), msg: "expired"},
		{name: "already expired when signed", auth: sign(-time.Second), msg: "expired"},
		{name: "too far ahead", auth: sign(MaxOutputAuthTTL + time.Second), msg: "more than 15m0s ahead"},
		{name: "another job", auth: sign(time.Minute), jobID: "job-2", msg: "does not verify"},
		{name: "another key", auth: SignOutputAuth(other, "omni1consumer", "job-1", time.Minute, testNow), msg: "does not verify"},
		{name: "expiry moved", auth: func() OutputAuth { a := sign(time.Minute); a.Expires++; return a }(), msg: "does not verify"},
		{name: "short signature", auth: func() OutputAuth { a := sign(time.Minute); a.Signature = a.Signature[:10]; return a }(), msg: "does not verify"},
		{name: "no key", auth: sign(time.Minute), pub: ed25519.PublicKey{}, msg: "no ed25519 public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.pub == nil {
				tt.pub = pub
			}
			if tt.jobID == "" {
				tt.jobID = "job-1"
			}
			if tt.now.IsZero() {
				tt.now = testNow
			}
			err := VerifyOutputAuth(tt.pub, tt.jobID, tt.auth, tt.now, MaxOutputAuthTTL)
			switch {
			case tt.msg == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.msg == "":
			case !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.msg):
				t.Fatalf("got %v, want ErrUnauthorized saying %q", err, tt.msg)
			}
		})
	}
}

func TestOutputAuthMessageBindsJobAndExpiry(t *testing.T) {
	got := string(OutputAuthMessage("job-1", 1740830400))
	if got != "omnisync job output v1\njob-1\n1740830400" {
		t.Errorf("message %q", got)
	}
	// a newline in a job id cannot make two requests sign the same message
	if bytes.Equal(OutputAuthMessage("a\n1", 2), OutputAuthMessage("a", 12)) {
		t.Error("distinct (job, expiry) pairs share a message")
	}
}

func TestParseOutputAuth(t *testing.T) {
	good := SignOutputAuth(ed25519.NewKeyFromSeed(seedA), "omni1consumer", "job-1", time.Minute, testNow)
	sig := good.Header()[strings.Index(good.Header(), `signature="`)+len(`signature="`):]
	sig = strings.TrimSuffix(sig, `"`)
	tests := []struct {
		name, header, msg string
	}{
		{"canonical", good.Header(), ""},
		{"scheme case and spacing", `omnisig address="omni1consumer",expires="1740830460" ,	signature="` + sig + `"`, ""},
		{"other order", `OmniSig signature="` + sig + `", expires="1740830460", address="omni1consumer"`, ""},
		{"missing", "", "missing"},
		{"bearer", "Bearer abc", "scheme is not OmniSig"},
		{"no params", "OmniSig", "expected a parameter name"},
		{"no address", `OmniSig expires="1", signature="` + sig + `"`, "address is missing"},
		{"empty address", `OmniSig address="", expires="1", signature="` + sig + `"`, "address is empty"},
		{"twice", `OmniSig address="a", address="b", expires="1", signature="` + sig + `"`, "given twice"},
		{"unknown", `OmniSig address="a", expires="1", signature="` + sig + `", nonce="x"`, `unknown parameter "nonce"`},
		{"unquoted", `OmniSig address=a, expires="1", signature="` + sig + `"`, `address must be name="value"`},
		{"unterminated", `OmniSig address="a, expires="1"`, "outside visible ASCII"},
		{"no comma", `OmniSig address="a" expires="1" signature="` + sig + `"`, "separated by commas"},
		{"trailing comma", `OmniSig address="a", expires="1", signature="` + sig + `",`, "expected a parameter name"},
		{"escape", `OmniSig address="a\\b", expires="1", signature="` + sig + `"`, "backslash"},
		{"negative expiry", `OmniSig address="a", expires="-1", signature="` + sig + `"`, "decimal number"},
		{"huge expiry", `OmniSig address="a", expires="9999999999999999999", signature="` + sig + `"`, "decimal number"},
		{"url base64", `OmniSig address="a", expires="1", signature="` + strings.NewReplacer("+", "-", "/", "_").Replace(sig) + `"`, "not standard base64"},
		{"short signature", `OmniSig address="a", expires="1", signature="AAAA"`, "signature is 3 bytes"},
		{"not base64", `OmniSig address="a", expires="1", signature="!!!!"`, "not standard base64"},
		{"too long", "OmniSig " + strings.Repeat("x", 2000), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "url base64" && !strings.ContainsAny(sig, "+/") {
				t.Skip("this signature has no + or /")
			}
			got, err := ParseOutputAuth(tt.header)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("parse %q: %v", tt.header, err)
				}
				if !reflect.DeepEqual(got, good) {
					t.Fatalf("got %+v, want %+v", got, good)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("parse %q: got %v, want ErrUnauthorized saying %q", tt.header, err, tt.msg)
			}
		})
	}
}

// FuzzParseOutputAuth: the parser never panics, accepts only what it can write back, and
// reads its own output back to the same value.
func FuzzParseOutputAuth(f *testing.F) {
	good := SignOutputAuth(ed25519.NewKeyFromSeed(seedA), "omni1consumer", "job-1", time.Minute, testNow)
	for _, seed := range []string{good.Header(), "", "OmniSig", `OmniSig address="a"`, "Bearer x",
		`OmniSig address="a", expires="1", signature="` + strings.Repeat("A", 86) + `=="`, "OmniSig ,,,", `OmniSig a="\"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		a, err := ParseOutputAuth(header)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
			return
		}
		if a.Address == "" || a.Expires < 0 || len(a.Signature) != ed25519.SignatureSize {
			t.Fatalf("accepted %q as %+v", header, a)
		}
		b, err := ParseOutputAuth(a.Header())
		if err != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("%q parsed to %+v, whose header %q parses to %+v, %v", header, a, a.Header(), b, err)
		}
	})
}

// The client refuses an output whose bytes do not match the digest the server names, and
// reads Omni-Verified strictly.
func TestClientJobOutputChecksDigest(t *testing.T) {
	data := []byte("C = A·B")
	tests := []struct {
		name, digest, verified, msg string
	}{
		{"good", DigestOf(data), "false", ""},
		{"wrong digest", DigestOf([]byte("other")), "true", "server says"},
		{"no verified header", DigestOf(data), "", "want true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAuth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth = r.Header.Get("Authorization")
				w.Header().Set(HeaderDigest, tt.digest)
				if tt.verified != "" {
					w.Header().Set(HeaderVerified, tt.verified)
				}
				w.Header().Set(HeaderJobStatus, StatusComputed)
				w.Write(data)
			}))
			t.Cleanup(srv.Close)
			auth := SignOutputAuth(ed25519.NewKeyFromSeed(seedA), "omni1consumer", "job-1", time.Minute, testNow)
			out, err := NewClient(srv.URL).JobOutput(context.Background(), "job-1", auth)
			if gotAuth != auth.Header() {
				t.Errorf("sent Authorization %q", gotAuth)
			}
			if tt.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("got %v, want an error saying %q", err, tt.msg)
				}
				return
			}
			want := JobOutput{JobID: "job-1", Digest: DigestOf(data), Size: int64(len(data)), Status: StatusComputed, Data: data}
			if err != nil || !reflect.DeepEqual(out, want) {
				t.Fatalf("got %+v, %v; want %+v", out, err, want)
			}
		})
	}
}

// UploadInput streams the reader with the length the caller gives, as octet-stream.
func TestClientUploadInputSendsStream(t *testing.T) {
	var got struct {
		method, path, ctype string
		length              int64
		body                []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.method, got.path, got.ctype, got.length = r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.ContentLength
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	body := strings.Repeat("x", 5000)
	// a reader NewRequest cannot size: the length must come from the caller
	if err := NewClient(srv.URL).UploadInput(context.Background(), "job 1", "a/b", io.MultiReader(strings.NewReader(body)), 5000); err != nil {
		t.Fatal(err)
	}
	if got.method != http.MethodPut || got.path != "/v1/jobs/job%201/inputs/a%2Fb" || got.ctype != "application/octet-stream" ||
		got.length != 5000 || string(got.body) != body {
		t.Errorf("server saw %s %s %q length %d, %d bytes", got.method, got.path, got.ctype, got.length, len(got.body))
	}
}
