package api

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestOutputArchiveIsCanonical(t *testing.T) {
	files := []OutputFile{{"b/deep/x.bin", []byte{0, 1, 2}}, {"a.txt", []byte("hello\n")}, {"empty", nil}}
	one, err := PackOutput(ContainerOutput{ExitCode: 3, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	// The same files in another order pack to the same bytes: replicas agree.
	two, err := PackOutput(ContainerOutput{ExitCode: 3, Files: []OutputFile{files[2], files[0], files[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one, two) {
		t.Fatal("the archive depends on the order the files were found in")
	}
	// Pinned: a change to the layout changes every honest node's digest at once, so it
	// must be deliberate (and every node upgraded together).
	if got, want := DigestOf(one), "sha256:f28c4a930c36f6866cf5ca18823b9e5fdca21fe03143b574d6b2c4bc1732ec90"; got != want {
		t.Fatalf("the archive's digest changed: %s, was %s", got, want)
	}
	tr := tar.NewReader(bytes.NewReader(one))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.ModTime.Unix() != 0 {
			t.Errorf("%s: header %+v is not canonical", h.Name, h)
		}
	}
	if want := []string{"exit_code", "outputs/a.txt", "outputs/b/deep/x.bin", "outputs/empty"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("entries %v, want %v", names, want)
	}

	got, err := UnpackOutput(one, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got.ExitCode != 3 || len(got.Files) != 3 || got.Files[0].Path != "a.txt" || string(got.Files[0].Data) != "hello\n" {
		t.Fatalf("unpacked %+v", got)
	}
	if _, err := UnpackOutput(one, 2, 1<<20); !errors.Is(err, ErrBadArchive) {
		t.Errorf("more files than allowed: %v", err)
	}
	if _, err := UnpackOutput(one, 10, 4); !errors.Is(err, ErrBadArchive) {
		t.Errorf("more bytes than allowed: %v", err)
	}
}

func TestPackOutputRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "/abs", "../up", "a/../b", "a//b", "./a", "a\\b", "nul\x00", strings.Repeat("x", 256)} {
		if _, err := PackOutput(ContainerOutput{Files: []OutputFile{{Path: p}}}); !errors.Is(err, ErrBadArchive) {
			t.Errorf("path %q packed: %v", p, err)
		}
	}
	if _, err := PackOutput(ContainerOutput{Files: []OutputFile{{Path: "a"}, {Path: "a"}}}); !errors.Is(err, ErrBadArchive) {
		t.Error("a path given twice packed")
	}
}

// An archive a node crafted by hand must not reach outside the consumer's directory, nor
// smuggle in a link, whatever UnpackOutput and WriteOutput are given.
func TestUnpackOutputRefusesWhatPackWouldNotWrite(t *testing.T) {
	build := func(hdrs ...*tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hdrs {
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write(make([]byte, h.Size))
			}
		}
		_ = tw.Close()
		return b.Bytes()
	}
	exit := &tar.Header{Typeflag: tar.TypeReg, Name: "exit_code", Size: 0}
	reg := func(name string) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: 1}
	}
	for name, archive := range map[string][]byte{
		"escape":        build(exitCode(t), reg("outputs/../../etc/passwd")),
		"outside":       build(exitCode(t), reg("elsewhere")),
		"symlink":       build(exitCode(t), &tar.Header{Typeflag: tar.TypeSymlink, Name: "outputs/l", Linkname: "/etc/passwd"}),
		"dir":           build(exitCode(t), &tar.Header{Typeflag: tar.TypeDir, Name: "outputs/d/"}),
		"twice":         build(exitCode(t), reg("outputs/a"), reg("outputs/a")),
		"no exit code":  build(reg("outputs/a")),
		"bad exit code": build(exit),
		"not a tar":     []byte("definitely not a tar archive, though long enough to look at"),
	} {
		if _, err := UnpackOutput(archive, 10, 1<<20); !errors.Is(err, ErrBadArchive) {
			t.Errorf("%s: err = %v, want ErrBadArchive", name, err)
		}
	}
}

func exitCode(t *testing.T) *tar.Header {
	t.Helper()
	return &tar.Header{Typeflag: tar.TypeReg, Name: "exit_code", Mode: 0o644, Size: 1}
}

func TestWriteOutputStaysInItsDirectoryAndOverwritesNothing(t *testing.T) {
	dir := t.TempDir()
	out := ContainerOutput{ExitCode: 0, Files: []OutputFile{{"r/s.txt", []byte("x")}}}
	if err := WriteOutput(filepath.Join(dir, "job"), out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "job", "outputs", "r", "s.txt")); err != nil || string(b) != "x" {
		t.Fatalf("written file: %q %v", b, err)
	}
	if err := WriteOutput(filepath.Join(dir, "job"), out); err == nil {
		t.Fatal("a second write overwrote the first")
	}
	// A link planted in the destination is not followed out of it.
	victim := filepath.Join(dir, "victim")
	if err := os.MkdirAll(filepath.Join(dir, "job2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "job2", "outputs")); err != nil {
		t.Fatal(err)
	}
	if err := WriteOutput(filepath.Join(dir, "job2"), out); err == nil {
		t.Fatal("WriteOutput followed a link out of its directory")
	}
	if _, err := os.Stat(victim); err == nil {
		t.Fatal("something was written through the link")
	}
}

func FuzzUnpackOutput(f *testing.F) {
	good, _ := PackOutput(ContainerOutput{ExitCode: 1, Files: []OutputFile{{"a", []byte("b")}}})
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := UnpackOutput(data, 64, 1<<20)
		if err != nil {
			return
		}
		for _, o := range out.Files {
			if CheckOutputPath(o.Path) != nil {
				t.Fatalf("unpacked a bad path %q", o.Path)
			}
		}
		// What unpacks, packs back to an archive that unpacks the same.
		again, err := PackOutput(out)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnpackOutput(again, 64, 1<<20)
		if err != nil || back.ExitCode != out.ExitCode || len(back.Files) != len(out.Files) {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}
