// Package keys owns OmniSync identities: ed25519 key pairs, their base58 addresses (the same
// form as a Solana wallet address) and the Solana CLI keypair JSON format.
//
// It is pure: it reads no files and no clock. Callers read and write key files themselves.
package keys

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mr-tron/base58"
)

// ErrInvalidAddress and ErrInvalidKey are returned for malformed input.
var (
	ErrInvalidAddress = errors.New("invalid address")
	ErrInvalidKey     = errors.New("invalid key")
)

// Address is the base58 encoding of an ed25519 public key.
type Address string

// AddressOf returns the address of a public key.
func AddressOf(pub ed25519.PublicKey) Address {
	return Address(base58.Encode(pub))
}

// PublicKey decodes the address back into the public key it names.
func (a Address) PublicKey() (ed25519.PublicKey, error) {
	if a == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidAddress)
	}
	b, err := base58.Decode(string(a))
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not base58", ErrInvalidAddress, string(a))
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %q decodes to %d bytes, want %d", ErrInvalidAddress, string(a), len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// Validate reports whether the address names a well-formed public key.
func (a Address) Validate() error {
	_, err := a.PublicKey()
	return err
}

// Short returns a human-friendly prefix of the address for logs and tables.
func (a Address) Short() string {
	if len(a) <= 10 {
		return string(a)
	}
	return string(a[:6]) + "…" + string(a[len(a)-4:])
}

// Generate creates a new key pair from the given entropy source (crypto/rand.Reader in production).
func Generate(rand io.Reader) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return priv, nil
}

// AddressOfKey returns the address of a private key's public half.
func AddressOfKey(priv ed25519.PrivateKey) Address {
	return AddressOf(priv.Public().(ed25519.PublicKey))
}

// MarshalSolanaJSON encodes a key as a Solana CLI keypair file: a JSON array of the 64 bytes
// (32-byte seed followed by the 32-byte public key).
func MarshalSolanaJSON(priv ed25519.PrivateKey) []byte {
	nums := make([]int, len(priv))
	for i, b := range priv {
		nums[i] = int(b)
	}
	out, _ := json.Marshal(nums) // cannot fail for []int
	return append(out, '\n')
}

// ParseSolanaJSON decodes a Solana CLI keypair file and checks that its public half matches
// its seed, so a corrupted file is rejected rather than signing with the wrong identity.
func ParseSolanaJSON(data []byte) (ed25519.PrivateKey, error) {
	var nums []int
	if err := json.Unmarshal(data, &nums); err != nil {
		return nil, fmt.Errorf("%w: keypair file is not a JSON array of bytes: %v", ErrInvalidKey, err)
	}
	if len(nums) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: keypair has %d bytes, want %d", ErrInvalidKey, len(nums), ed25519.PrivateKeySize)
	}
	raw := make([]byte, len(nums))
	for i, n := range nums {
		if n < 0 || n > 255 {
			return nil, fmt.Errorf("%w: byte %d is %d, outside 0..255", ErrInvalidKey, i, n)
		}
		raw[i] = byte(n)
	}
	priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
	if !priv.Equal(ed25519.PrivateKey(raw)) {
		return nil, fmt.Errorf("%w: public key does not match the seed", ErrInvalidKey)
	}
	return priv, nil
}
