// Package jobio is the boundary between a job and the node, shared by the docker and
// process runtimes: it lays out the host directory a job runs in, reads back what the job
// wrote there, caps and tails its logs, and names the outcomes every runtime reports
// (timed out, non-zero exit). Its two checks matter most: an input name never leaves the
// directory it is written into, and collecting outputs never follows a link or reads a
// special file, so a job cannot make the node read a host file for it.
//
// It sits under process/ only because its authors were limited to that tree; it belongs
// to both runtimes and can move to internal/runtime/jobio unchanged.
package jobio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// File is one input file: a slash-separated path relative to the inputs directory.
type File struct {
	Path string
	Data []byte
}

// Output is one regular file the job left in its outputs directory.
type Output struct {
	Path   string // slash-separated, relative to the outputs directory
	Data   []byte
	SHA256 string // lowercase hex of sha256(Data)
}

// Limits bound what Collect reads back; a zero field means the default.
type Limits struct {
	MaxFiles int   // default 1024
	MaxBytes int64 // total over all files, default 256 MiB
}

// Defaults for Limits.
const (
	DefaultMaxFiles = 1024
	DefaultMaxBytes = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

var (
	// ErrBadPath is returned for an input name that is empty, absolute, not clean or
	// climbs out of its directory.
	ErrBadPath = errors.New("bad job file path")
	// ErrOutputRejected is returned when the outputs hold a link, a device, a pipe or
	// anything else that is not a regular file or a directory.
	ErrOutputRejected = errors.New("output rejected")
	// ErrOutputTooLarge is returned when the outputs exceed their file count or byte cap.
	ErrOutputTooLarge = errors.New("outputs exceed their limit")
)

// CheckPath reports whether p may name a job file: relative, slash-separated, already
// clean, no "." or ".." element, no NUL, at most 255 bytes per element and 4096 in all.
func CheckPath(p string) error {
	switch {
	case p == "" || len(p) > 4096 || strings.ContainsRune(p, 0) || strings.Contains(p, `\`):
	case path.IsAbs(p) || path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)):
	case badElement(p):
	default:
		return nil
	}
	return fmt.Errorf("%w: %q", ErrBadPath, p)
}

// badElement reports an element that is too long or is "." or "..".
func badElement(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == "." || e == ".." || len(e) > 255 {
			return true
		}
	}
	return false
}

// WriteInputs creates dir and writes files into it, read-only (files 0444, directories
// 0555 once filled), through an os.Root so that no name can land outside dir.
func WriteInputs(dir string, files []File) error {
	isFile := map[string]bool{}
	isDir := map[string]bool{}
	for _, f := range files {
		if err := CheckPath(f.Path); err != nil {
			return err
		}
		if isFile[f.Path] {
			return fmt.Errorf("%w: %q given twice", ErrBadPath, f.Path)
		}
		isFile[f.Path] = true
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			isDir[d] = true
		}
	}
	for d := range isDir {
		if isFile[d] {
			return fmt.Errorf("%w: %q is both a file and a directory", ErrBadPath, d)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, f := range files {
		if d := path.Dir(f.Path); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		w, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return err
		}
		_, err = w.Write(f.Data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	// Deepest first, so a parent keeps its write bit until its children are done.
	dirs := slices.Collect(maps.Keys(isDir))
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		if err := root.Chmod(d, 0o555); err != nil {
			return err
		}
	}
	return os.Chmod(dir, 0o555)
}

// Usage counts the regular files under dir and their bytes, stopping early once either
// exceeds lim; a watcher calls it while the job runs to stop a job that floods its disk.
func Usage(dir string, lim Limits) (files int, bytes int64, err error) {
	lim = lim.withDefaults()
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files++
			bytes += info.Size()
		} else if !d.IsDir() {
			files++ // links and special files count against the limit too
		}
		if files > lim.MaxFiles || bytes > lim.MaxBytes {
			return fmt.Errorf("%w: %d files, %d bytes (limit %d files, %d bytes)", ErrOutputTooLarge, files, bytes, lim.MaxFiles, lim.MaxBytes)
		}
		return nil
	})
	return files, bytes, err
}

// Collect reads every regular file under dir, sorted by path, with its sha256. A link or
// special file anywhere rejects the whole output, as does exceeding lim. Files are opened
// through an os.Root, so even a link created while Collect runs cannot lead outside dir.
func Collect(dir string, lim Limits) ([]Output, error) {
	lim = lim.withDefaults()
	if info, err := os.Lstat(dir); err != nil {
		return nil, err
	} else if !info.IsDir() {
		return nil, fmt.Errorf("%w: the outputs directory is a %v", ErrOutputRejected, info.Mode().Type())
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var outs []Output
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return nil
		case !d.Type().IsRegular():
			return fmt.Errorf("%w: %q is a %v, not a regular file", ErrOutputRejected, p, d.Type())
		case len(outs) >= lim.MaxFiles:
			return fmt.Errorf("%w: more than %d files", ErrOutputTooLarge, lim.MaxFiles)
		}
		// O_NONBLOCK: a file swapped for a FIFO after the walk saw it must not hang us.
		f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return fmt.Errorf("%w: %q changed into a %v", ErrOutputRejected, p, info.Mode().Type())
		}
		data, err := io.ReadAll(io.LimitReader(f, lim.MaxBytes-total+1))
		if err != nil {
			return err
		}
		total += int64(len(data))
		if total > lim.MaxBytes {
			return fmt.Errorf("%w: more than %d bytes", ErrOutputTooLarge, lim.MaxBytes)
		}
		sum := sha256.Sum256(data)
		outs = append(outs, Output{Path: p, Data: data, SHA256: hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return outs, nil
}

// RemoveAll removes dir even where the job left directories without write or search
// permission.
func RemoveAll(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
