package devnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/omnisync/omnisync/internal/keys"
)

// Keys are the devnet's identities, kept as Solana-style keypair files under home/keys so
// a restarted devnet is the same network.
type Keys struct {
	Consumer  ed25519.PrivateKey
	Router    ed25519.PrivateKey
	Validator ed25519.PrivateKey
	Nodes     []ed25519.PrivateKey
	// Genesis beneficiaries: the team and investor allocations vest; the public-sale and
	// liquidity allocations are unlocked.
	Team, Investors, PublicSale, Liquidity ed25519.PrivateKey
}

func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := keys.ParseSolanaJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k, err := keys.Generate(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, keys.MarshalSolanaJSON(k), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func loadOrCreateKeys(dir string, nodes int) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, err
	}
	var k Keys
	var err error
	for name, dst := range map[string]*ed25519.PrivateKey{
		"consumer": &k.Consumer, "router": &k.Router, "validator": &k.Validator,
		"team": &k.Team, "investors": &k.Investors, "public-sale": &k.PublicSale, "liquidity": &k.Liquidity,
	} {
		if *dst, err = loadOrCreateKey(filepath.Join(dir, name+".json")); err != nil {
			return Keys{}, err
		}
	}
	for i := 1; i <= nodes; i++ {
		nk, err := loadOrCreateKey(filepath.Join(dir, fmt.Sprintf("node-%d.json", i)))
		if err != nil {
			return Keys{}, err
		}
		k.Nodes = append(k.Nodes, nk)
	}
	return k, nil
}

// writeFileAtomic writes via a temporary file and rename, so a crash never leaves a
// half-written key or genesis behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
