package transport

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureTLSGeneratesOnceAndReuses(t *testing.T) {
	dir := t.TempDir()
	first, err := EnsureTLS(dir, []string{"10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	before := readAll(t, first)

	second, err := EnsureTLS(dir, []string{"10.0.0.7"})
	if err != nil {
		t.Fatal(err)
	}
	if after := readAll(t, second); !bytes.Equal(before, after) {
		t.Fatal("second EnsureTLS rewrote the material")
	}

	for path, want := range map[string]os.FileMode{
		first.CA: 0o644, first.Cert: 0o644, first.Key: 0o600, filepath.Join(dir, caKeyFile): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", filepath.Base(path), got, want)
		}
	}

	conf, err := first.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != tls.VersionTLS13 {
		t.Errorf("MinVersion %x, want TLS 1.3", conf.MinVersion)
	}
	leaf, err := x509.ParseCertificate(conf.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots, err := first.ClientRootCAs()
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"10.0.0.7", "127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server cert does not verify for %s: %v", host, err)
		}
	}

	// A new host reissues the server cert under the same CA.
	caBefore, _ := os.ReadFile(first.CA)
	third, err := EnsureTLS(dir, []string{"router.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if caAfter, _ := os.ReadFile(third.CA); !bytes.Equal(caBefore, caAfter) {
		t.Fatal("adding a host replaced the CA")
	}
	pair, err := tls.LoadX509KeyPair(third.Cert, third.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "router.example.org"}); err != nil {
		t.Fatalf("reissued cert: %v", err)
	}
}

func readAll(t *testing.T, f *TLSFiles) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{f.CA, f.Cert, f.Key} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
