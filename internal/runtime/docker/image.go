package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// resolveImage finds the job's image on the node, loading it from its tarball first when
// one is given, and returns it as the engine knows it. The container is then created from
// the image id, never the tag, so a tag moved by another load cannot change what runs.
func (r *Runtime) resolveImage(ctx context.Context, im Image) (imageInfo, error) {
	if im.Ref != "" {
		if err := checkRef(im.Ref); err != nil {
			return imageInfo{}, err
		}
	}
	if im.ID != "" {
		if err := checkImageID(im.ID); err != nil {
			return imageInfo{}, err
		}
	}
	switch {
	case im.Archive != "":
		return r.loadArchive(ctx, im)
	case im.ArchiveSHA256 != "":
		return imageInfo{}, fmt.Errorf("%w: an archive digest without an archive", ErrImageRejected)
	case im.ID != "":
		return r.inspectExpecting(ctx, im.ID, im)
	case im.Ref != "":
		return r.inspectExpecting(ctx, im.Ref, im)
	}
	return imageInfo{}, fmt.Errorf("%w: the job names no image", ErrImageRejected)
}

// inspectExpecting inspects ref and checks the image against what the job names.
func (r *Runtime) inspectExpecting(ctx context.Context, ref string, im Image) (imageInfo, error) {
	info, err := r.c.inspectImage(ctx, ref)
	if isNotFound(err) {
		return imageInfo{}, fmt.Errorf("%w: %s is not on this node (no registry is reached: send it as a docker save archive)", ErrImageRejected, ref)
	} else if err != nil {
		return imageInfo{}, err
	}
	if im.ID != "" && info.ID != im.ID {
		return imageInfo{}, fmt.Errorf("%w: %s is %s, the job names %s", ErrImageRejected, ref, info.ID, im.ID)
	}
	if im.Ref != "" && ref != im.Ref {
		tagged, err := r.c.inspectImage(ctx, im.Ref)
		if err != nil || tagged.ID != info.ID {
			return imageInfo{}, fmt.Errorf("%w: %s does not name image %s", ErrImageRejected, im.Ref, info.ID)
		}
	}
	return info, nil
}

// loadArchive checks a `docker save` tarball — its sha256, then that it carries exactly one
// image, with the id the job names and no tag but the job's — loads it, and checks that the
// engine now has that image.
func (r *Runtime) loadArchive(ctx context.Context, im Image) (imageInfo, error) {
	want := strings.ToLower(im.ArchiveSHA256)
	if b, err := hex.DecodeString(want); err != nil || len(b) != sha256.Size {
		return imageInfo{}, fmt.Errorf("%w: archive digest %q is not 64 hex digits", ErrImageRejected, im.ArchiveSHA256)
	}
	f, err := os.Open(im.Archive)
	if err != nil {
		return imageInfo{}, fmt.Errorf("%w: %v", ErrImageRejected, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return imageInfo{}, err
	}
	if !st.Mode().IsRegular() || st.Size() > r.maxArch {
		return imageInfo{}, fmt.Errorf("%w: archive is not a regular file of at most %d bytes", ErrImageRejected, r.maxArch)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return imageInfo{}, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return imageInfo{}, fmt.Errorf("%w: archive sha256 is %s, the job names %s", ErrImageRejected, got, want)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return imageInfo{}, err
	}
	ai, err := readArchiveManifest(f)
	if err != nil {
		return imageInfo{}, err
	}
	if im.ID != "" && ai.ID != im.ID {
		return imageInfo{}, fmt.Errorf("%w: archive holds image %s, the job names %s", ErrImageRejected, ai.ID, im.ID)
	}
	for _, t := range ai.RepoTags {
		if t != im.Ref && t != im.Ref+":latest" {
			return imageInfo{}, fmt.Errorf("%w: archive would tag %q, the job names %q", ErrImageRejected, t, im.Ref)
		}
	}
	if im.Ref != "" && !slices.Contains(ai.RepoTags, im.Ref) && !slices.Contains(ai.RepoTags, im.Ref+":latest") {
		return imageInfo{}, fmt.Errorf("%w: archive does not carry tag %q", ErrImageRejected, im.Ref)
	}
	if info, err := r.c.inspectImage(ctx, ai.ID); err == nil {
		return info, nil // content-addressed: already here, nothing to load
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return imageInfo{}, err
	}
	if _, err := r.c.loadImage(ctx, f); err != nil {
		return imageInfo{}, fmt.Errorf("%w: loading: %v", ErrImageRejected, err)
	}
	info, err := r.c.inspectImage(ctx, ai.ID)
	if err != nil {
		return imageInfo{}, fmt.Errorf("%w: engine lacks image %s after loading it: %v", ErrImageRejected, ai.ID, err)
	}
	return info, nil
}

// BuildScratchImage builds an image FROM scratch holding one static executable at /name,
// its entrypoint, tags it, and returns its id. The devnet builds its demo image this way:
// no registry is reached, and nothing but the executable is in the image.
func (r *Runtime) BuildScratchImage(ctx context.Context, tag, name string, exe []byte) (string, error) {
	if err := checkRef(tag); err != nil {
		return "", err
	}
	if strings.ContainsAny(name, "/\"\n ") || name == "" {
		return "", fmt.Errorf("docker runtime: executable name %q", name)
	}
	dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	if err := buildImage(ctx, r.c, tag, map[string][]byte{"Dockerfile": []byte(dockerfile), name: exe}); err != nil {
		return "", fmt.Errorf("docker build %s: %w", tag, err)
	}
	info, err := r.c.inspectImage(ctx, tag)
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

// buildImage runs POST /build on a context made of files (executable, mode 0755).
func buildImage(ctx context.Context, c *client, tag string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, "/build", url.Values{"t": {tag}, "rm": {"1"}, "forcerm": {"1"}, "q": {"1"}}, &buf, "application/x-tar")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = jsonMessages(resp.Body)
	return err
}
