package zk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/consensys/gnark-crypto/ecc"
	groth16 "github.com/consensys/gnark/backend/groth16/bn254"
	cs "github.com/consensys/gnark/constraint/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// Keys are a shape's compiled circuit with its Groth16 proving and verifying keys.
//
// Trust. Setup draws secret scalars (the "toxic waste") from crypto/rand; whoever learns
// them can forge a proof of any output. [Setup] is a single-party setup: it is as
// trustworthy as the process that ran it and forgot them. That is fine for a devnet or for
// a verifier that makes its own keys, but keys that many parties rely on must come from a
// multi-party ceremony (gnark's backend/groth16/bn254/mpcsetup), sound if any one
// participant destroys its share; the chain would then record the verifying key's hash
// per shape. gnark's setup takes no seed, so keys are not reproducible: they are made once
// and cached, never re-derived.
type Keys struct {
	shape Shape
	ccs   *cs.R1CS
	pk    *groth16.ProvingKey
	vk    *VerifyingKey
}

// Shape is the shape the keys were made for.
func (k *Keys) Shape() Shape { return k.shape }

// Constraints is the circuit's R1CS constraint count.
func (k *Keys) Constraints() int { return k.ccs.GetNbConstraints() }

// VerifyingKey is what a verifier needs; it is small and public.
func (k *Keys) VerifyingKey() *VerifyingKey { return k.vk }

// compile builds the R1CS for a circuit; compiling is deterministic, so a cached proving
// key stays valid for the recompiled circuit.
func compile(c *mlpCircuit) (*cs.R1CS, error) {
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, fmt.Errorf("zk: compile %s: %w", c.shape.ID(), err)
	}
	return ccs.(*cs.R1CS), nil
}

// Setup compiles the circuit for a shape and makes fresh keys for it (see [Keys] on trust).
func Setup(s Shape) (*Keys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return setupCircuit(newCircuit(s))
}

func setupCircuit(c *mlpCircuit) (*Keys, error) {
	ccs, err := compile(c)
	if err != nil {
		return nil, err
	}
	var pk groth16.ProvingKey
	var vk VerifyingKey
	if err := groth16.Setup(ccs, &pk, &vk.vk); err != nil {
		return nil, fmt.Errorf("zk: setup %s: %w", c.shape.ID(), err)
	}
	return &Keys{shape: c.shape, ccs: ccs, pk: &pk, vk: &vk}, nil
}

// KeyCache makes keys once per shape and keeps them. Keys depend on the shape only, so
// every model of a shape shares them; the model commitment in each proof tells the models
// apart. With a directory the keys also survive restarts, and every process that shares
// the directory (a deployment's nodes and validators) uses the first keys stored for a
// shape. Verifiers read only verifying keys from it (VerifyingKey) and never make keys.
type KeyCache struct {
	dir string

	mu   sync.Mutex
	keys map[string]*cacheEntry
	vks  map[string]*VerifyingKey // by shape: from keys made or loaded, or read for VerifyingKey
}

type cacheEntry struct {
	once sync.Once
	keys *Keys
	err  error
}

// NewKeyCache returns a cache that also stores keys under dir; "" keeps them in memory only.
func NewKeyCache(dir string) *KeyCache {
	return &KeyCache{dir: dir, keys: map[string]*cacheEntry{}, vks: map[string]*VerifyingKey{}}
}

// Keys returns the keys for a shape: from memory, else from the directory, else made now
// (seconds for large shapes; concurrent callers for one shape wait for one setup).
func (c *KeyCache) Keys(s Shape) (*Keys, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	id := s.ID()
	c.mu.Lock()
	e, ok := c.keys[id]
	if !ok {
		e = &cacheEntry{}
		c.keys[id] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.keys, e.err = c.load(s) })
	c.mu.Lock()
	if e.err != nil {
		delete(c.keys, id) // let a later call retry
	} else {
		c.vks[id] = e.keys.vk
	}
	c.mu.Unlock()
	return e.keys, e.err
}

// ErrNoKeys is returned by VerifyingKey for a shape nobody has made keys for here.
var ErrNoKeys = errors.New("zk: no keys for this shape")

// VerifyingKey returns a shape's verifying key: from keys this cache holds, else from its
// directory. Unlike Keys it never makes keys: a verifier's own setup would reject every
// proof made with the deployment's keys, so a missing key is ErrNoKeys.
func (c *KeyCache) VerifyingKey(s Shape) (*VerifyingKey, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	id := s.ID()
	c.mu.Lock()
	vk, ok := c.vks[id]
	c.mu.Unlock()
	if ok {
		return vk, nil
	}
	if c.dir == "" {
		return nil, fmt.Errorf("%w: %s (no key directory)", ErrNoKeys, id)
	}
	data, err := os.ReadFile(c.path(s))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no %s)", ErrNoKeys, id, c.path(s))
	}
	if err != nil {
		return nil, fmt.Errorf("zk: key cache: %w", err)
	}
	vkBytes, _, err := splitKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("zk: key cache %s: %w", c.path(s), err)
	}
	if vk, err = DecodeVerifyingKey(vkBytes); err != nil {
		return nil, fmt.Errorf("zk: key cache %s: %w", c.path(s), err)
	}
	c.mu.Lock()
	c.vks[id] = vk
	c.mu.Unlock()
	return vk, nil
}

// cacheVersion names the file layout and the circuit's definition: bump it whenever the
// circuit changes, or cached proving keys would no longer match it.
const cacheVersion = "v1"

// A cache file holds both keys, so that they are stored together, once:
// the verifying key's length (4 bytes, big-endian), the verifying key, the raw proving key.
func (c *KeyCache) path(s Shape) string {
	return filepath.Join(c.dir, "mlp-"+cacheVersion+"-"+s.ID()+".keys")
}

func (c *KeyCache) load(s Shape) (*Keys, error) {
	if c.dir == "" {
		return Setup(s)
	}
	k, err := c.read(s)
	if !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = Setup(s); err != nil {
		return nil, err
	}
	stored, err := c.store(k)
	if err != nil || stored {
		return k, err
	}
	// Another process sharing the directory stored keys for the shape first: theirs are
	// the ones its verifiers read, so ours are dropped.
	return c.read(s)
}

// splitKeyFile splits a cache file into its verifying key and raw proving key.
func splitKeyFile(data []byte) (vk, pk []byte, err error) {
	if len(data) < 4 || uint64(binary.BigEndian.Uint32(data)) > uint64(len(data)-4) {
		return nil, nil, errors.New("truncated")
	}
	n := 4 + int(binary.BigEndian.Uint32(data))
	return data[4:n], data[n:], nil
}

// read loads a shape's keys from the directory; an error wraps os.ErrNotExist when there
// are none.
func (c *KeyCache) read(s Shape) (*Keys, error) {
	path := c.path(s)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("zk: key cache: %w", err)
	}
	vkBytes, pkBytes, err := splitKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("zk: key cache %s: %w", path, err)
	}
	vk, err := DecodeVerifyingKey(vkBytes)
	if err != nil {
		return nil, fmt.Errorf("zk: key cache %s: %w", path, err)
	}
	ccs, err := compile(newCircuit(s))
	if err != nil {
		return nil, err
	}
	// The proving key is ours, written by store: skip the slow subgroup checks. A corrupt
	// one only yields proofs that fail verification.
	var pk groth16.ProvingKey
	if _, err := pk.UnsafeReadFrom(bytes.NewReader(pkBytes)); err != nil {
		return nil, fmt.Errorf("zk: key cache %s: %w", path, err)
	}
	return &Keys{shape: s, ccs: ccs, pk: &pk, vk: vk}, nil
}

// store writes the keys under their final name only if no file has it (a hard link from
// a temporary file, which fails if the name exists), so that a reader never sees half a
// file and two processes that set up one shape at once agree on whose keys it is: stored
// reports whether these keys are the ones the directory holds.
func (c *KeyCache) store(k *Keys) (stored bool, err error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return false, fmt.Errorf("zk: key cache: %w", err)
	}
	vk, err := k.vk.MarshalBinary()
	if err != nil {
		return false, err
	}
	var buf bytes.Buffer
	buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(vk))))
	buf.Write(vk)
	if _, err := k.pk.WriteRawTo(&buf); err != nil {
		return false, fmt.Errorf("zk: key cache: %w", err)
	}
	path := c.path(k.shape)
	tmp, err := os.CreateTemp(c.dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("zk: key cache: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	_, err = tmp.Write(buf.Bytes())
	if err = errors.Join(err, tmp.Close()); err != nil {
		return false, fmt.Errorf("zk: key cache: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("zk: key cache: %w", err)
	}
	return true, nil
}
