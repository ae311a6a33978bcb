package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside the TLS directory.
const (
	caCertFile     = "ca.pem"
	caKeyFile      = "ca-key.pem"
	serverCertFile = "server.pem"
	serverKeyFile  = "server-key.pem"
)

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 2 * 365 * 24 * time.Hour
	// renewBefore is how close to expiry EnsureTLS reissues the server cert.
	renewBefore = 30 * 24 * time.Hour
)

// defaultHosts are always in the server certificate, so loopback dials work.
var defaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// TLSFiles names the PEM files of a router's TLS material. Nodes need only CA.
type TLSFiles struct {
	CA   string // CA certificate, handed to nodes as their trust root
	Cert string // server certificate, signed by the CA
	Key  string // server private key (0600)
}

// ServerConfig loads the server key pair into a TLS 1.3-only config.
func (f *TLSFiles) ServerConfig() (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: load server key pair: %v", ErrTLS, err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}}, nil
}

// ClientRootCAs returns a pool holding only the CA, for DialOptions.RootCAs.
func (f *TLSFiles) ClientRootCAs() (*x509.CertPool, error) {
	ca, err := readCert(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

// EnsureTLS makes sure dir holds a CA and a server certificate valid for hosts
// (IP addresses or DNS names; 127.0.0.1, ::1 and localhost are always added)
// and returns their paths. Existing material is reused; the server certificate
// is reissued by the existing CA only when it does not cover hosts or is about
// to expire, so nodes that already trust the CA keep working. The CA key is kept
// beside it in ca-key.pem (0600) for that purpose.
func EnsureTLS(dir string, hosts []string) (*TLSFiles, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: tls dir is empty", ErrInvalidOptions)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLS, err)
	}
	files := &TLSFiles{
		CA:   filepath.Join(dir, caCertFile),
		Cert: filepath.Join(dir, serverCertFile),
		Key:  filepath.Join(dir, serverKeyFile),
	}
	caKeyPath := filepath.Join(dir, caKeyFile)
	hosts = mergeHosts(hosts)

	if exists(files.CA) {
		if usable, err := serverCertUsable(files, hosts); err != nil || usable {
			return files, err
		}
		ca, err := readCert(files.CA)
		if err != nil {
			return nil, err
		}
		caKey, err := readKey(caKeyPath)
		if err != nil {
			return nil, fmt.Errorf("%w: server certificate must be reissued for %v but the ca key is unavailable: %v", ErrTLS, hosts, err)
		}
		return files, issueServerCert(files, ca, caKey, hosts)
	}

	ca, caKey, err := generateCA()
	if err != nil {
		return nil, err
	}
	if err := writePEM(caKeyPath, "EC PRIVATE KEY", marshalKey(caKey), 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(files.CA, "CERTIFICATE", ca.Raw, 0o644); err != nil {
		return nil, err
	}
	return files, issueServerCert(files, ca, caKey, hosts)
}

// serverCertUsable reports whether the existing server cert chains to the CA,
// covers hosts and is not about to expire. Missing files mean "not usable";
// unreadable ones are errors, so nothing is silently overwritten.
func serverCertUsable(files *TLSFiles, hosts []string) (bool, error) {
	if !exists(files.Cert) || !exists(files.Key) {
		return false, nil
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return false, fmt.Errorf("%w: load server key pair: %v", ErrTLS, err)
	}
	leaf := pair.Leaf
	pool, err := files.ClientRootCAs()
	if err != nil {
		return false, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: time.Now().Add(renewBefore)}); err != nil {
		return false, nil
	}
	// Client auth too: the same certificate authenticates the router to its cluster peers
	// (certificates issued before clusters lack it and are reissued).
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return false, nil
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false, nil
		}
	}
	return true, nil
}

func generateCA() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: generate ca key: %v", ErrTLS, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serialNumber(),
		Subject:               pkix.Name{Organization: []string{"OmniSync"}, CommonName: "OmniSync router CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: create ca certificate: %v", ErrTLS, err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrTLS, err)
	}
	return ca, key, nil
}

func issueServerCert(files *TLSFiles, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("%w: generate server key: %v", ErrTLS, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serialNumber(),
		Subject:      pkix.Name{Organization: []string{"OmniSync"}, CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("%w: create server certificate: %v", ErrTLS, err)
	}
	if err := writePEM(files.Key, "EC PRIVATE KEY", marshalKey(key), 0o600); err != nil {
		return err
	}
	return writePEM(files.Cert, "CERTIFICATE", der, 0o644)
}

// mergeHosts puts the caller's hosts first (the first becomes the common name)
// followed by the loopback defaults, without duplicates.
func mergeHosts(hosts []string) []string {
	var out []string
	for _, h := range append(slices.Clone(hosts), defaultHosts...) {
		if h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

func serialNumber() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func marshalKey(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // P-256 keys always marshal
	}
	return der
}

func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse %s: %v", ErrTLS, path, err)
	}
	return cert, nil
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	der, err := readPEM(path, "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse %s: %v", ErrTLS, path, err)
	}
	return key, nil
}

func readPEM(path, blockType string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTLS, err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("%w: %s holds no %s block", ErrTLS, path, blockType)
	}
	return block.Bytes, nil
}

// writePEM writes atomically, so a crash never leaves half a key behind.
func writePEM(path, blockType string, der []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTLS, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: blockType, Bytes: der})
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrTLS, path, err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
