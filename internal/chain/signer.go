package chain

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Signer signs and submits transactions for one key, one at a time, keeping the account's
// sequence in step with the chain.
type Signer struct {
	client  *Client
	key     ed25519.PrivateKey
	chainID string

	mu     sync.Mutex
	seq    uint64
	synced bool
}

// NewSigner returns a signer for key on the chain behind client.
func NewSigner(client *Client, key ed25519.PrivateKey, chainID string) *Signer {
	return &Signer{client: client, key: key, chainID: chainID}
}

// Address is the signer's account.
func (s *Signer) Address() keys.Address { return keys.AddressOfKey(s.key) }

// Submit signs msg with the next sequence and waits for it to commit.
func (s *Signer) Submit(ctx context.Context, msg ledger.Msg) (Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.synced {
			acc, err := s.client.Account(ctx, s.Address())
			if err != nil {
				return Committed{}, err
			}
			s.seq, s.synced = acc.Seq, true
		}
		tx, err := ledger.SignTx(s.key, s.chainID, s.seq, msg)
		if err != nil {
			return Committed{}, err
		}
		c, err := s.client.Broadcast(ctx, tx)
		if err == nil {
			s.seq++
			return c, nil
		}
		if errors.Is(err, ledger.ErrWrongSequence) && attempt == 0 {
			s.synced = false // someone else used this key; resync once
			continue
		}
		return Committed{}, fmt.Errorf("%s: %w", msg.Kind(), err)
	}
}

// SignNext signs msg with the next sequence without submitting it, for callers that hand
// the tx to someone else (a consumer's job creation goes through the router).
func SignNext(ctx context.Context, client *Client, key ed25519.PrivateKey, chainID string, msg ledger.Msg) ([]byte, uint64, error) {
	acc, err := client.Account(ctx, keys.AddressOfKey(key))
	if err != nil {
		return nil, 0, err
	}
	tx, err := ledger.SignTx(key, chainID, acc.Seq, msg)
	return tx, acc.Seq, err
}

// Wallet is a signer plus read access: what a daemon holds to act on the chain. Its
// methods use only ledger types, so daemons can declare the interface they need without
// importing CometBFT.
type Wallet struct {
	signer *Signer
	client *Client
}

// NewWallet binds key to the chain behind client.
func NewWallet(client *Client, key ed25519.PrivateKey, chainID string) *Wallet {
	return &Wallet{signer: NewSigner(client, key, chainID), client: client}
}

// Address is the wallet's account.
func (w *Wallet) Address() keys.Address { return w.signer.Address() }

// Send signs msg, submits it and waits for it to commit; it returns the tx hash.
func (w *Wallet) Send(ctx context.Context, msg ledger.Msg) (string, error) {
	c, err := w.signer.Submit(ctx, msg)
	return c.Hash, err
}

// BroadcastTx submits a tx someone else signed and waits for it to commit; it returns the
// tx hash and the height of the block that committed it.
func (w *Wallet) BroadcastTx(ctx context.Context, tx []byte) (string, int64, error) {
	c, err := w.client.Broadcast(ctx, tx)
	return c.Hash, c.Height, err
}

// Query reads ledger state (see ledger.App.Query for paths) into v.
func (w *Wallet) Query(ctx context.Context, path string, v any) error {
	return w.client.Query(ctx, path, v)
}
