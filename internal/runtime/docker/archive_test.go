package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omnisync/omnisync/internal/runtime/jobio"
)

// TestImageArchiveIsCheckedThenLoaded makes a fresh image, saves it with the engine's own
// `docker save` (GET /images/{id}/get), deletes it, and hands the tarball to jobs.
func TestImageArchiveIsCheckedThenLoaded(t *testing.T) {
	t.Parallel()
	c, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	ctx := context.Background()

	// A label no earlier run used makes the image id new, so the load is real.
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	tag := "omnisync-test/archived:" + hex.EncodeToString(nonce)
	dockerfile := "FROM " + images["worker"] + "\nLABEL omnisync.test.nonce=" + hex.EncodeToString(nonce) + "\n"
	if err := buildImage(ctx, c, tag, map[string][]byte{"Dockerfile": []byte(dockerfile)}); err != nil {
		t.Fatal(err)
	}
	info, err := c.inspectImage(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	resp, err := c.do(ctx, http.MethodGet, "/images/"+tag+"/get", nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	removeImage := func() {
		_ = c.json(ctx, http.MethodDelete, "/images/"+info.ID, url.Values{"force": {"1"}}, nil, nil)
	}
	removeImage()
	defer removeImage()
	absent := func() bool { _, err := c.inspectImage(ctx, info.ID); return isNotFound(err) }
	if !absent() {
		t.Fatal("image still present after deleting it")
	}

	job := Job{ID: "archived", Inputs: []jobio.File{{Path: "in", Data: []byte("olleh")}}}
	for _, tc := range []struct {
		name string
		img  Image
		msg  string
	}{
		{"wrong digest", Image{Ref: tag, Archive: archive, ArchiveSHA256: strings.Repeat("0", 64)}, "archive sha256 is " + digest},
		{"wrong image id", Image{Ref: tag, ID: "sha256:" + strings.Repeat("1", 64), Archive: archive, ArchiveSHA256: digest}, "archive holds image " + info.ID},
		{"tag it should not set", Image{Ref: "victim:latest", Archive: archive, ArchiveSHA256: digest}, `archive would tag "` + tag},
	} {
		job.Image = tc.img
		_, err := r.Run(ctx, job)
		if !errors.Is(err, ErrImageRejected) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: err = %v, want ErrImageRejected saying %q", tc.name, err, tc.msg)
		}
		if !absent() {
			t.Fatalf("%s: the image was loaded", tc.name)
		}
	}

	job.Image = Image{Ref: tag, ID: info.ID, Archive: archive, ArchiveSHA256: digest}
	res, err := r.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if res.ImageID != info.ID || len(res.Outputs) == 0 || string(res.Outputs[0].Data) != "hello" {
		t.Errorf("result %+v, want image %s and output hello", res, info.ID)
	}
}

// tarOf builds a tar stream; the unit tests and the fuzz corpus use it.
func tarOf(t testing.TB, entries ...tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg || h.Typeflag == 0 {
			h.Size = int64(len(body))
			h.Linkname = ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// reg is a regular file entry whose body rides in Linkname (tarOf moves it).
func reg(name, body string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: body}
}

func TestReadArchiveManifest(t *testing.T) {
	const cfg = `{"architecture":"amd64"}`
	sum := sha256.Sum256([]byte(cfg))
	id := "sha256:" + hex.EncodeToString(sum[:])
	manifest := `[{"Config":"c.json","RepoTags":["x/y:1"],"Layers":["l/layer.tar"]}]`
	for _, tc := range []struct {
		name    string
		tar     []byte
		wantErr string
	}{
		{"saved by docker", tarOf(t, reg("l/layer.tar", "layer"), reg("c.json", cfg), reg("manifest.json", manifest)), ""},
		{"manifest first, ./ names", tarOf(t, reg("./manifest.json", manifest), reg("./c.json", cfg)), ""},
		{"no manifest", tarOf(t, reg("c.json", cfg)), "no manifest.json"},
		{"two images", tarOf(t, reg("c.json", cfg), reg("manifest.json", `[{"Config":"c.json"},{"Config":"c.json"}]`)), "holds 2 images"},
		{"config missing", tarOf(t, reg("manifest.json", manifest)), `"c.json" missing`},
		{"config is a link", tarOf(t, tar.Header{Name: "c.json", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, reg("manifest.json", manifest)), `"c.json" missing`},
		{"name given twice", tarOf(t, reg("c.json", cfg), reg("c.json", "{}"), reg("manifest.json", manifest)), "given twice"},
		{"escaping name", tarOf(t, reg("../c.json", cfg), reg("manifest.json", manifest)), "entry name"},
		{"escaping config", tarOf(t, reg("manifest.json", `[{"Config":"../c.json"}]`)), "entry name"},
		{"bad tag", tarOf(t, reg("c.json", cfg), reg("manifest.json", `[{"Config":"c.json","RepoTags":["a/../b"]}]`)), "image reference"},
		{"not a tar", []byte("hello"), "image rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readArchiveManifest(bytes.NewReader(tc.tar))
			if tc.wantErr != "" {
				if !errors.Is(err, ErrImageRejected) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got.ID != id {
				t.Fatalf("got %+v, %v; want id %s", got, err, id)
			}
		})
	}
}

func FuzzReadArchiveManifest(f *testing.F) {
	f.Add(tarOf(f, reg("c.json", "{}"), reg("manifest.json", `[{"Config":"c.json","RepoTags":["a:b"]}]`)))
	f.Add(tarOf(f, reg("manifest.json", `[{"Config":"./c.json"}]`), reg("./c.json", "{}")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := readArchiveManifest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrImageRejected) {
				t.Fatalf("error %v does not wrap ErrImageRejected", err)
			}
			return
		}
		if checkImageID(img.ID) != nil {
			t.Fatalf("accepted archive gives id %q", img.ID)
		}
		for _, tag := range img.RepoTags {
			if checkRef(tag) != nil {
				t.Fatalf("accepted archive tags %q", tag)
			}
		}
	})
}

// TestImageDeclaringVolumesIsRefused: the engine would give each declared VOLUME a
// writable anonymous volume, a way to write outside /outputs.
func TestImageDeclaringVolumesIsRefused(t *testing.T) {
	t.Parallel()
	c, images := testEngine(t)
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	tag := "omnisync-test/with-volume:" + strings.TrimPrefix(images["worker"], "omnisync-test/worker:")
	if _, err := c.inspectImage(ctx, tag); err != nil {
		if err := buildImage(ctx, c, tag, map[string][]byte{"Dockerfile": []byte("FROM " + images["worker"] + "\nVOLUME /data\n")}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Run(ctx, Job{ID: "volume", Image: Image{Ref: tag}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "/data") {
		t.Fatalf("err = %v, want ErrRefused naming /data", err)
	}
	if left := containersOf(t, r); len(left) > 0 {
		t.Errorf("containers left: %v", left)
	}
}
