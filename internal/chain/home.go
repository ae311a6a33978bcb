package chain

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto"
	cmted "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
)

// ValidatorKey is a validator's consensus identity as the genesis file records it.
type ValidatorKey struct {
	Name   string
	PubKey ed25519.PublicKey
	Power  int64
	NodeID string
}

// InitHome creates a validator home (config dirs, consensus key, node key) if missing and
// returns its consensus public key and p2p node id. Existing keys are kept.
func InitHome(home string) (ValidatorKey, error) {
	c := cfg.DefaultConfig().SetRoot(home)
	for _, d := range []string{filepath.Join(home, "config"), filepath.Join(home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return ValidatorKey{}, fmt.Errorf("create %s: %w", d, err)
		}
	}
	pv, err := privval.LoadOrGenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile(), func() (crypto.PrivKey, error) {
		return cmted.GenPrivKey(), nil
	})
	if err != nil {
		return ValidatorKey{}, fmt.Errorf("validator key: %w", err)
	}
	nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
	if err != nil {
		return ValidatorKey{}, fmt.Errorf("node key: %w", err)
	}
	pub, err := pv.GetPubKey()
	if err != nil {
		return ValidatorKey{}, err
	}
	return ValidatorKey{PubKey: ed25519.PublicKey(pub.Bytes()), Power: 1, NodeID: string(nk.ID())}, nil
}

// WriteGenesis writes one CometBFT genesis file, with the ledger genesis as app_state, into
// every home given.
func WriteGenesis(homes []string, chainID string, genesisTime time.Time, vals []ValidatorKey, appState any) error {
	state, err := json.Marshal(appState)
	if err != nil {
		return fmt.Errorf("encode app state: %w", err)
	}
	doc := &types.GenesisDoc{
		GenesisTime:     genesisTime.UTC(),
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: types.DefaultConsensusParams(),
		AppState:        state,
	}
	for _, v := range vals {
		doc.Validators = append(doc.Validators, types.GenesisValidator{
			PubKey: cmted.PubKey(v.PubKey), Power: v.Power, Name: v.Name,
		})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("genesis: %w", err)
	}
	for _, h := range homes {
		if err := doc.SaveAs(cfg.DefaultConfig().SetRoot(h).GenesisFile()); err != nil {
			return fmt.Errorf("write genesis in %s: %w", h, err)
		}
	}
	return nil
}

// HasGenesis reports whether home already holds a genesis file.
func HasGenesis(home string) bool {
	_, err := os.Stat(cfg.DefaultConfig().SetRoot(home).GenesisFile())
	return err == nil
}
