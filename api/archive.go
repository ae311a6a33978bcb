package api

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A container job's output is one tar archive, laid out as
//
//	exit_code          the command's exit status, in decimal, with a newline
//	outputs/<path>     each regular file the job left under /outputs
//
// and written the same way from the same files wherever it is made: entries sorted by
// path, every file mode 0644 owned by 0:0 with no names, every time the Unix epoch, no
// directory entries. Two honest nodes that ran the same deterministic job therefore commit
// the same digest, which is what the redundant level compares. Logs are not part of it: a
// timestamp in a log line would make honest nodes disagree.

// Archive layout names.
const (
	ArchiveExitCode = "exit_code"
	ArchiveOutputs  = "outputs/"
)

// OutputFile is one file of a container job's outputs.
type OutputFile struct {
	Path string // slash-separated, relative to /outputs
	Data []byte
}

// ContainerOutput is a container job's unpacked output.
type ContainerOutput struct {
	ExitCode int
	Files    []OutputFile // sorted by path
}

// ErrBadArchive is wrapped by every error UnpackOutput returns for a malformed archive.
var ErrBadArchive = errors.New("bad output archive")

// PackOutput writes the canonical archive of a container job's outputs. Paths must pass
// CheckOutputPath; the caller (the node's runtime) has already checked them.
func PackOutput(out ContainerOutput) ([]byte, error) {
	files := slices.Clone(out.Files)
	slices.SortFunc(files, func(a, b OutputFile) int { return strings.Compare(a.Path, b.Path) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)),
			ModTime: time.Unix(0, 0), Format: tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add(ArchiveExitCode, []byte(strconv.Itoa(out.ExitCode)+"\n")); err != nil {
		return nil, err
	}
	for i, f := range files {
		if err := CheckOutputPath(f.Path); err != nil {
			return nil, err
		}
		if i > 0 && files[i-1].Path == f.Path {
			return nil, fmt.Errorf("%w: %q given twice", ErrBadArchive, f.Path)
		}
		if err := add(ArchiveOutputs+f.Path, f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// CheckOutputPath reports whether p may name an output file: relative, slash-separated,
// clean, without "." or ".." elements, NUL or backslash, at most 255 bytes an element and
// 4096 in all.
func CheckOutputPath(p string) error {
	ok := p != "" && len(p) <= 4096 && !strings.ContainsAny(p, "\x00\\") &&
		!path.IsAbs(p) && path.Clean(p) == p
	for _, e := range strings.Split(p, "/") {
		ok = ok && e != "." && e != ".." && len(e) <= 255
	}
	if !ok {
		return fmt.Errorf("%w: output path %q", ErrBadArchive, p)
	}
	return nil
}

// UnpackOutput reads a container job's output archive, refusing anything PackOutput would
// not have written (another entry type, a path outside outputs/, a name given twice, a
// missing or malformed exit code) and any archive holding more than maxFiles files or
// maxBytes bytes in all.
func UnpackOutput(data []byte, maxFiles int, maxBytes int64) (ContainerOutput, error) {
	var out ContainerOutput
	tr := tar.NewReader(bytes.NewReader(data))
	sawExit := false
	var total int64
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return ContainerOutput{}, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return ContainerOutput{}, fmt.Errorf("%w: %q is not a regular file", ErrBadArchive, hdr.Name)
		}
		if seen[hdr.Name] {
			return ContainerOutput{}, fmt.Errorf("%w: %q given twice", ErrBadArchive, hdr.Name)
		}
		seen[hdr.Name] = true
		if total += hdr.Size; hdr.Size < 0 || total > maxBytes {
			return ContainerOutput{}, fmt.Errorf("%w: more than %d bytes", ErrBadArchive, maxBytes)
		}
		body, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return ContainerOutput{}, fmt.Errorf("%w: %v", ErrBadArchive, err)
		}
		if hdr.Name == ArchiveExitCode {
			code, err := strconv.Atoi(strings.TrimSuffix(string(body), "\n"))
			if err != nil {
				return ContainerOutput{}, fmt.Errorf("%w: exit code %q", ErrBadArchive, body)
			}
			out.ExitCode, sawExit = code, true
			continue
		}
		p, ok := strings.CutPrefix(hdr.Name, ArchiveOutputs)
		if !ok {
			return ContainerOutput{}, fmt.Errorf("%w: %q is outside %s", ErrBadArchive, hdr.Name, ArchiveOutputs)
		}
		if err := CheckOutputPath(p); err != nil {
			return ContainerOutput{}, err
		}
		if len(out.Files) >= maxFiles {
			return ContainerOutput{}, fmt.Errorf("%w: more than %d files", ErrBadArchive, maxFiles)
		}
		out.Files = append(out.Files, OutputFile{Path: p, Data: body})
	}
	if !sawExit {
		return ContainerOutput{}, fmt.Errorf("%w: no %s", ErrBadArchive, ArchiveExitCode)
	}
	slices.SortFunc(out.Files, func(a, b OutputFile) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// WriteOutput writes a container job's output files under dir (created if missing,
// with its parents), each through an os.Root so no path lands outside dir, and the exit
// code as dir/exit_code. It refuses to overwrite a file that is already there.
func WriteOutput(dir string, out ContainerOutput) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	write := func(name string, data []byte) error {
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(ArchiveExitCode, []byte(strconv.Itoa(out.ExitCode)+"\n")); err != nil {
		return err
	}
	for _, f := range out.Files {
		if err := CheckOutputPath(f.Path); err != nil {
			return err
		}
		if err := write(ArchiveOutputs+f.Path, f.Data); err != nil {
			return err
		}
	}
	return nil
}
