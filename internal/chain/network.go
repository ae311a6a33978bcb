package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/omnisync/omnisync/internal/keyfile"
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

// Defaults of a loopback network made by InitNetwork.
const (
	DefaultNetworkChainID = "omnisync-localnet"
	// DefaultBasePort is validator-1's RPC port, CometBFT's usual 26657; its P2P port is
	// one below. Every further validator adds PortStride to both.
	DefaultBasePort = 26657
	PortStride      = 10
	// HomeConfigFile is the file in each validator home that records how to start it.
	HomeConfigFile = "omnisync.json"
	// AccountKeyFile is each validator's operator key (Solana keypair JSON) in its home.
	AccountKeyFile = "account.json"
)

// ErrNetworkExists is returned by InitNetwork rather than overwrite an existing genesis.
var ErrNetworkExists = errors.New("network already initialised")

// NetworkOptions describe a network of validators on one machine's loopback interface.
type NetworkOptions struct {
	Dir        string // validator-K homes go in Dir/validator-K, genesis beneficiary keys in Dir/keys
	Validators int    // number of validators, each staking the minimum validator stake with equal power
	ChainID    string // default DefaultNetworkChainID
	// BasePort is validator-1's RPC port; its P2P port is BasePort-1 and validator K adds
	// (K-1)·PortStride to both. 0 picks free ports (tests).
	BasePort int
	// BlockTime, EmptyBlockInterval and ProposeTimeout are recorded in every home (see
	// Options); zero leaves Options' defaults.
	BlockTime          time.Duration
	EmptyBlockInterval time.Duration
	ProposeTimeout     time.Duration
	// GenesisTime defaults to now; vesting schedules start from it.
	GenesisTime time.Time
	// Routers are the accounts allowed to act as routers (the routers parameter): a router
	// escrows and assigns jobs on chain, so the network must name it.
	Routers []keys.Address
}

// Network is what InitNetwork wrote.
type Network struct {
	ChainID    string             `json:"chain_id"`
	Dir        string             `json:"dir"`
	Validators []NetworkValidator `json:"validators"`
	// Accounts are the genesis beneficiaries whose keys are in Dir/keys.
	Accounts []NetworkAccount `json:"accounts"`
}

// NetworkValidator is one validator of a Network.
type NetworkValidator struct {
	Name      string       `json:"name"`
	Home      string       `json:"home"`
	Account   keys.Address `json:"account"`
	KeyFile   string       `json:"key_file"`
	NodeID    string       `json:"node_id"`
	Stake     uint64       `json:"stake_uomni"`
	RPCListen string       `json:"rpc_listen"`
	P2PListen string       `json:"p2p_listen"`
}

// RPCURL is the validator's CometBFT RPC endpoint.
func (v NetworkValidator) RPCURL() string { return "http://" + v.RPCListen }

// NetworkAccount is a funded genesis account whose key InitNetwork wrote.
type NetworkAccount struct {
	Name    string          `json:"name"`
	Address keys.Address    `json:"address"`
	KeyFile string          `json:"key_file"`
	Balance uint64          `json:"balance_uomni"`
	Vesting *ledger.Vesting `json:"vesting,omitempty"`
}

func (o *NetworkOptions) setDefaults() error {
	if o.Dir == "" {
		return errors.New("chain: network directory is required")
	}
	if o.Validators < 1 {
		return fmt.Errorf("chain: a network needs at least one validator, got %d", o.Validators)
	}
	if o.ChainID == "" {
		o.ChainID = DefaultNetworkChainID
	}
	if o.BasePort != 0 {
		if last := o.BasePort + (o.Validators-1)*PortStride; o.BasePort < 2 || last > 65535 {
			return fmt.Errorf("chain: base port %d gives ports %d..%d for %d validators; choose a base port between 2 and %d",
				o.BasePort, o.BasePort-1, last, o.Validators, 65535-(o.Validators-1)*PortStride)
		}
	}
	if o.GenesisTime.IsZero() {
		o.GenesisTime = time.Now()
	}
	for _, r := range o.Routers {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("chain: router %q: %w", r, err)
		}
	}
	return nil
}

// InitNetwork creates the homes, keys and one shared genesis of a network whose validators
// all run on this machine's loopback interface, each started with LoadOptions on its home.
// Keys already present are kept, so an init that failed halfway can be run again; a home
// that already has a genesis is never overwritten (ErrNetworkExists).
func InitNetwork(opts NetworkOptions) (Network, error) {
	if err := opts.setDefaults(); err != nil {
		return Network{}, err
	}
	nw := Network{ChainID: opts.ChainID, Dir: opts.Dir}
	homes := make([]string, opts.Validators)
	for i := range homes {
		homes[i] = filepath.Join(opts.Dir, fmt.Sprintf("validator-%d", i+1))
		if HasGenesis(homes[i]) {
			return Network{}, fmt.Errorf("%w: %s already has a genesis; choose another directory, or delete %s to start over",
				ErrNetworkExists, homes[i], opts.Dir)
		}
	}
	ports, err := networkPorts(opts.BasePort, opts.Validators)
	if err != nil {
		return Network{}, err
	}

	params := ledger.DefaultParams()
	params.Routers = opts.Routers
	var b ledger.Beneficiaries
	consensus := make([]ValidatorKey, len(homes))
	for i, home := range homes {
		vk, err := InitHome(home)
		if err != nil {
			return Network{}, err
		}
		vk.Name = filepath.Base(home)
		vk.Power = ledger.Validator{Stake: params.MinValidatorStake}.Power()
		consensus[i] = vk
		keyFile := filepath.Join(home, AccountKeyFile)
		key, err := keyfile.LoadOrCreate(keyFile)
		if err != nil {
			return Network{}, err
		}
		v := ledger.Validator{Address: keys.AddressOfKey(key), PubKey: vk.PubKey, Stake: params.MinValidatorStake}
		b.Validators = append(b.Validators, v)
		nw.Validators = append(nw.Validators, NetworkValidator{
			Name: vk.Name, Home: home, Account: v.Address, KeyFile: keyFile, NodeID: vk.NodeID, Stake: v.Stake,
			RPCListen: ports[i].rpc, P2PListen: ports[i].p2p,
		})
	}
	// One key per allocation of the whitepaper, in Dir/keys.
	for _, ben := range []struct {
		name string
		to   *[]keys.Address
	}{{"team", &b.Team}, {"investors", &b.Investors}, {"public-sale", &b.PublicSale}, {"liquidity", &b.Liquidity}} {
		keyFile := filepath.Join(opts.Dir, "keys", ben.name+".json")
		key, err := keyfile.LoadOrCreate(keyFile)
		if err != nil {
			return Network{}, err
		}
		*ben.to = []keys.Address{keys.AddressOfKey(key)}
		nw.Accounts = append(nw.Accounts, NetworkAccount{Name: ben.name, Address: keys.AddressOfKey(key), KeyFile: keyFile})
	}
	g, err := ledger.Tokenomics(opts.GenesisTime.Unix(), params, b)
	if err != nil {
		return Network{}, fmt.Errorf("chain: genesis: %w", err)
	}
	for i := range nw.Accounts {
		for _, ga := range g.Accounts {
			if ga.Address == nw.Accounts[i].Address {
				nw.Accounts[i].Balance, nw.Accounts[i].Vesting = ga.Balance, ga.Vesting
			}
		}
	}

	for i, v := range nw.Validators {
		hc := homeConfig{
			RPCListen: v.RPCListen, P2PListen: v.P2PListen, PersistentPeers: []string{},
			BlockTime: duration(opts.BlockTime), EmptyBlockInterval: duration(opts.EmptyBlockInterval),
			ProposeTimeout: duration(opts.ProposeTimeout),
		}
		for j, peer := range nw.Validators {
			if j != i {
				hc.PersistentPeers = append(hc.PersistentPeers, peer.NodeID+"@"+peer.P2PListen)
			}
		}
		if err := hc.write(homes[i]); err != nil {
			return Network{}, err
		}
	}
	// The genesis goes last: a home without one is not yet initialised, so a failure above
	// leaves something InitNetwork can simply be run on again.
	if err := WriteGenesis(homes, opts.ChainID, opts.GenesisTime, consensus, g); err != nil {
		return Network{}, err
	}
	return nw, nil
}

// LoadOptions reads the options InitNetwork recorded in a validator home, so that the
// validator can be started from its home alone. The caller may still set the Logger and
// the fields InitNetwork does not record.
func LoadOptions(home string) (Options, error) {
	hc, err := readHomeConfig(home)
	if err != nil {
		return Options{}, err
	}
	return Options{
		Home: home, RPCListen: hc.RPCListen, P2PListen: hc.P2PListen, Peers: strings.Join(hc.PersistentPeers, ","),
		BlockTime: time.Duration(hc.BlockTime), EmptyBlockInterval: time.Duration(hc.EmptyBlockInterval),
		ProposeTimeout: time.Duration(hc.ProposeTimeout),
	}, nil
}

// homeConfig is the per-home file InitNetwork writes and LoadOptions reads. It is JSON so
// that it needs no dependency beyond the standard library; unknown fields are rejected
// so that a misspelt hand edit is reported rather than ignored.
type homeConfig struct {
	RPCListen          string   `json:"rpc_listen"`
	P2PListen          string   `json:"p2p_listen"`
	PersistentPeers    []string `json:"persistent_peers"`
	BlockTime          duration `json:"block_time,omitempty"`
	EmptyBlockInterval duration `json:"empty_block_interval,omitempty"`
	ProposeTimeout     duration `json:"propose_timeout,omitempty"`
}

// duration is a time.Duration written as text, e.g. "200ms".
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"1s\"", b)
	}
	*d = duration(v)
	return nil
}

func (hc homeConfig) write(home string) error {
	data, err := json.MarshalIndent(hc, "", "  ")
	if err != nil {
		return err
	}
	return keyfile.WriteAtomic(filepath.Join(home, HomeConfigFile), append(data, '\n'), 0o600)
}

func readHomeConfig(home string) (homeConfig, error) {
	path := filepath.Join(home, HomeConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return homeConfig{}, fmt.Errorf("chain: %s has no %s: pass the home of one validator (DIR/validator-K) made by `omnisync chain init`", home, HomeConfigFile)
	}
	if err != nil {
		return homeConfig{}, fmt.Errorf("chain: %w", err)
	}
	var hc homeConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hc); err != nil {
		return homeConfig{}, fmt.Errorf("chain: %s: %w", path, err)
	}
	for name, addr := range map[string]string{"rpc_listen": hc.RPCListen, "p2p_listen": hc.P2PListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return homeConfig{}, fmt.Errorf("chain: %s: %s %q is not host:port", path, name, addr)
		}
	}
	return hc, nil
}

type listenPorts struct{ rpc, p2p string }

// networkPorts assigns every validator its RPC and P2P address on 127.0.0.1: from base
// with PortStride between validators, or, for base 0, free ports held open together
// until all are chosen so that no two coincide.
func networkPorts(base, n int) ([]listenPorts, error) {
	const host = "127.0.0.1"
	out := make([]listenPorts, n)
	if base != 0 {
		for i := range out {
			rpc := base + i*PortStride
			out[i] = listenPorts{net.JoinHostPort(host, strconv.Itoa(rpc)), net.JoinHostPort(host, strconv.Itoa(rpc-1))}
		}
		return out, nil
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	pick := func() (string, error) {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			return "", fmt.Errorf("chain: find a free port: %w", err)
		}
		held = append(held, l)
		return l.Addr().String(), nil
	}
	for i := range out {
		var err error
		if out[i].rpc, err = pick(); err != nil {
			return nil, err
		}
		if out[i].p2p, err = pick(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
