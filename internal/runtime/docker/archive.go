package docker

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// archiveImage is what a `docker save` tarball says about the one image it carries.
type archiveImage struct {
	ID       string   // "sha256:" + sha256 of the image config: the id the engine gives it
	RepoTags []string // the tags loading it would set
}

// Bounds on what readArchiveManifest keeps in memory.
const (
	maxArchiveEntries  = 1 << 16
	maxArchiveJSONSize = 4 << 20 // manifest.json and the image config are a few KiB
)

// readArchiveManifest reads a `docker save` tarball and returns the image it would load,
// from manifest.json and the sha256 of the config file it names. It refuses what the engine
// might read differently from us: names that are not clean relative paths, a name given
// twice, a manifest or config that is not a regular file, and a manifest of more or fewer
// than one image. Layers are skipped, not read into memory.
func readArchiveManifest(r io.Reader) (archiveImage, error) {
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	digests := map[string]string{} // small regular files: name -> sha256 hex
	var manifest []byte
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return archiveImage{}, fmt.Errorf("%w: %v", ErrImageRejected, err)
		}
		if n >= maxArchiveEntries {
			return archiveImage{}, fmt.Errorf("%w: more than %d entries", ErrImageRejected, maxArchiveEntries)
		}
		name, err := archiveName(h.Name)
		if err != nil {
			return archiveImage{}, err
		}
		if seen[name] {
			return archiveImage{}, fmt.Errorf("%w: entry %q given twice", ErrImageRejected, name)
		}
		seen[name] = true
		// Only small regular files can be the manifest or a config: the legacy layout names
		// configs <id>.json, the OCI one blobs/sha256/<id>.
		if h.Typeflag != tar.TypeReg || h.Size > maxArchiveJSONSize ||
			!strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, "blobs/sha256/") {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return archiveImage{}, fmt.Errorf("%w: %q: %v", ErrImageRejected, name, err)
		}
		if name == "manifest.json" {
			manifest = data
		}
		sum := sha256.Sum256(data)
		digests[name] = hex.EncodeToString(sum[:])
	}
	if manifest == nil {
		return archiveImage{}, fmt.Errorf("%w: no manifest.json (not a `docker save` tarball)", ErrImageRejected)
	}
	var entries []struct {
		Config   string
		RepoTags []string
	}
	if err := json.Unmarshal(manifest, &entries); err != nil {
		return archiveImage{}, fmt.Errorf("%w: manifest.json: %v", ErrImageRejected, err)
	}
	if len(entries) != 1 {
		return archiveImage{}, fmt.Errorf("%w: the archive holds %d images, not one", ErrImageRejected, len(entries))
	}
	cfg, err := archiveName(entries[0].Config)
	if err != nil {
		return archiveImage{}, err
	}
	sum, ok := digests[cfg]
	if !ok {
		return archiveImage{}, fmt.Errorf("%w: image config %q missing, not a regular file, or too large", ErrImageRejected, cfg)
	}
	for _, t := range entries[0].RepoTags {
		if err := checkRef(t); err != nil {
			return archiveImage{}, err
		}
	}
	return archiveImage{ID: "sha256:" + sum, RepoTags: entries[0].RepoTags}, nil
}

// archiveName cleans a tar entry name the way extracting it would, refusing one that
// leaves the archive's root.
func archiveName(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if name == "" || path.IsAbs(c) || c == "." || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: entry name %q", ErrImageRejected, name)
	}
	return c, nil
}

// checkRef accepts image references (name[:tag][@digest], or an id sha256:<hex>) made of
// the characters Docker allows, so that one can be put in an API path as it is.
func checkRef(ref string) error {
	ok := ref != "" && len(ref) <= 512 && !strings.Contains(ref, "..") && !strings.Contains(ref, "//") &&
		!strings.HasPrefix(ref, "/") && !strings.HasSuffix(ref, "/")
	for _, c := range ref {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/:@", c))
	}
	if !ok {
		return fmt.Errorf("%w: image reference %q", ErrImageRejected, ref)
	}
	return nil
}

// checkImageID accepts "sha256:" followed by 64 lowercase hex digits.
func checkImageID(id string) error {
	h, ok := strings.CutPrefix(id, "sha256:")
	if _, err := hex.DecodeString(h); !ok || err != nil || len(h) != 64 || strings.ToLower(h) != h {
		return fmt.Errorf("%w: image id %q is not sha256:<64 hex digits>", ErrImageRejected, id)
	}
	return nil
}
