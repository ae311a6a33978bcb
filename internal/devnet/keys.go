package devnet

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/omnisync/omnisync/internal/keyfile"
)

// Keys are the devnet's identities, kept as Solana-style keypair files under home/keys so
// a restarted devnet is the same network.
type Keys struct {
	Consumer  ed25519.PrivateKey
	Router    ed25519.PrivateKey
	Validator ed25519.PrivateKey
	Nodes     []ed25519.PrivateKey
	// Verifiers are the extra validators' accounts (Options.Verifiers).
	Verifiers []ed25519.PrivateKey
	// Genesis beneficiaries: the team and investor allocations vest; the public-sale and
	// liquidity allocations are unlocked.
	Team, Investors, PublicSale, Liquidity ed25519.PrivateKey
}

func loadOrCreateKeys(dir string, nodes, verifiers int) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, err
	}
	var k Keys
	var err error
	for name, dst := range map[string]*ed25519.PrivateKey{
		"consumer": &k.Consumer, "router": &k.Router, "validator": &k.Validator,
		"team": &k.Team, "investors": &k.Investors, "public-sale": &k.PublicSale, "liquidity": &k.Liquidity,
	} {
		if *dst, err = keyfile.LoadOrCreate(filepath.Join(dir, name+".json")); err != nil {
			return Keys{}, err
		}
	}
	for i := 1; i <= nodes; i++ {
		nk, err := keyfile.LoadOrCreate(filepath.Join(dir, fmt.Sprintf("node-%d.json", i)))
		if err != nil {
			return Keys{}, err
		}
		k.Nodes = append(k.Nodes, nk)
	}
	for i := 1; i <= verifiers; i++ {
		vk, err := keyfile.LoadOrCreate(filepath.Join(dir, fmt.Sprintf("verifier-%d.json", i)))
		if err != nil {
			return Keys{}, err
		}
		k.Verifiers = append(k.Verifiers, vk)
	}
	return k, nil
}

// verifierConsensusKey is the CometBFT key an extra validator stakes with: derived from
// its account key, so that a resumed devnet names the same one, and run by no consensus
// node (see Options.Verifiers).
func verifierConsensusKey(account ed25519.PrivateKey) ed25519.PublicKey {
	seed := sha256.Sum256(append([]byte("omnisync devnet verifier consensus key\x00"), account.Seed()...))
	return ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
}
