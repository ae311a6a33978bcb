package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/omnisync/omnisync/internal/transport"
)

// The router mounts its TLS directory read-only: what `tool tls` makes must be exactly
// what `router run --tls-host router` looks for, so that it reads the files and writes none.
func TestTLSIsCompleteForTheRouter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"tls", dir, "router"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != filepath.Join(dir, "ca.pem")+"\n" {
		t.Fatalf("printed %q, want the CA file", got)
	}
	before := snapshot(t, dir)
	files, err := transport.EnsureTLS(dir, []string{"router"}) // as router run does on start
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Fatal("the router would rewrite its TLS files: a read-only mount would stop it")
	}
	data, err := os.ReadFile(files.Cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cert.DNSNames, "router") {
		t.Fatalf("certificate names %v, want the router's service name", cert.DNSNames)
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = info.ModTime().String() + string(data)
	}
	return files
}

// The deploy scripts run only by hand (deploy/up starts 15 containers); CI at least parses them.
func TestDeployScriptsParse(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, script := range []string{"up", "demo", "down", "init", "lib.sh"} {
		if out, err := exec.Command(bash, "-n", filepath.Join("..", script)).CombinedOutput(); err != nil {
			t.Errorf("deploy/%s: %v\n%s", script, err, out)
		}
	}
}
