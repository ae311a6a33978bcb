package jobio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"a", "a/b.txt", "dir/sub/x", ".hidden"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", ".", "..", `a\b`, "a\x00b", strings.Repeat("x", 256)} {
		if err := CheckPath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("%q: err = %v, want ErrBadPath", p, err)
		}
	}
}

func TestWriteInputsIsReadOnlyAndStaysInside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "in")
	t.Cleanup(func() { _ = RemoveAll(dir) }) // read-only directories: t.TempDir alone fails as non-root
	if err := WriteInputs(dir, []File{{Path: "a.txt", Data: []byte("A")}, {Path: "d/e/b.bin", Data: []byte{0, 1}}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "d/e/b.bin"))
	if err != nil || string(b) != "\x00\x01" {
		t.Fatalf("read back %q, %v", b, err)
	}
	for p, want := range map[string]os.FileMode{".": 0o555, "a.txt": 0o444, "d": 0o555, "d/e": 0o555, "d/e/b.bin": 0o444} {
		if info, err := os.Stat(filepath.Join(dir, p)); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, info.Mode().Perm(), err, want)
		}
	}
	for name, files := range map[string][]File{
		"escape":          {{Path: "../x"}},
		"twice":           {{Path: "a"}, {Path: "a"}},
		"file and dir":    {{Path: "a"}, {Path: "a/b"}},
		"absolute":        {{Path: "/tmp/x"}},
		"dir then a file": {{Path: "x/y"}, {Path: "x"}},
	} {
		in := filepath.Join(t.TempDir(), "in")
		t.Cleanup(func() { _ = RemoveAll(in) })
		if err := WriteInputs(in, files); !errors.Is(err, ErrBadPath) {
			t.Errorf("%s: err = %v, want ErrBadPath", name, err)
		}
	}
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	write := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.txt", "bee")
	write("a/z.txt", "zed")
	outs, err := Collect(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[0].Path != "a/z.txt" || outs[1].Path != "b.txt" {
		t.Fatalf("outputs %+v", outs)
	}
	sum := sha256.Sum256([]byte("bee"))
	if outs[1].SHA256 != hex.EncodeToString(sum[:]) || string(outs[1].Data) != "bee" {
		t.Errorf("b.txt: %+v", outs[1])
	}
	if _, err := Collect(dir, Limits{MaxBytes: 5}); !errors.Is(err, ErrOutputTooLarge) {
		t.Errorf("over the byte cap: %v", err)
	}
	if _, err := Collect(dir, Limits{MaxFiles: 1}); !errors.Is(err, ErrOutputTooLarge) {
		t.Errorf("over the file cap: %v", err)
	}
	if _, _, err := Usage(dir, Limits{MaxBytes: 5}); !errors.Is(err, ErrOutputTooLarge) {
		t.Errorf("usage over the byte cap: %v", err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	write("ok.txt", "fine")
	if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(dir, Limits{}); !errors.Is(err, ErrOutputRejected) {
		t.Errorf("a symlink among the outputs: %v", err)
	}
	os.Remove(filepath.Join(dir, "a", "link"))
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(dir, Limits{}); !errors.Is(err, ErrOutputRejected) {
		t.Errorf("a fifo among the outputs: %v", err)
	}
	os.Remove(filepath.Join(dir, "fifo"))
	linked := filepath.Join(t.TempDir(), "out")
	if err := os.Symlink(dir, linked); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(linked, Limits{}); !errors.Is(err, ErrOutputRejected) {
		t.Errorf("an outputs directory that is a link: %v", err)
	}
}

func TestLogSinkCapsAndKeepsTail(t *testing.T) {
	var got strings.Builder
	s := NewLogSink(&got, 10)
	for range 3 {
		_, _ = s.Write([]byte("0123456"))
	}
	if want := "0123456012\n[omnisync: log truncated at 10 bytes]\n"; got.String() != want {
		t.Errorf("forwarded %q, want %q", got.String(), want)
	}
	if string(s.Tail()) != "012345601234560123456" {
		t.Errorf("tail %q", s.Tail())
	}
	big := strings.Repeat("x", 2*TailBytes) + "end"
	_, _ = s.Write([]byte(big))
	if tl := s.Tail(); len(tl) != TailBytes || !strings.HasSuffix(string(tl), "end") {
		t.Errorf("tail of %d bytes", len(tl))
	}
}

// FuzzCheckPath checks that every name CheckPath accepts stays inside the directory it is
// joined to, and that WriteInputs agrees with it.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../..", "/x", "a//b", "."} {
		f.Add(s)
	}
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != nil {
			return
		}
		j := filepath.Join(base, filepath.FromSlash(p))
		if rel, err := filepath.Rel(base, j); err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.ToSlash(rel) != p {
			t.Fatalf("%q accepted but joins to %q", p, j)
		}
	})
}
