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

// NetworkOptions describe a network of validators on one machine's loopback interface, or
// each on its own host (Hosts).
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
	// Hosts, when set, puts validator K on its own machine, reached by the name Hosts[K-1]
	// (a DNS name or IP: a container's service name, a server's private address). Every
	// validator then listens on all interfaces at BasePort (RPC) and BasePort-1 (P2P), and
	// its peers dial HOST:BasePort-1. Empty keeps the whole network on 127.0.0.1.
	Hosts []string
	// Funds are accounts (node operators, consumers) given a balance at genesis, carved out
	// of the public-sale allocation.
	Funds []ledger.GenesisAccount
	// CommitteeSize is the committee_size parameter: validators drawn to verify each job
	// (0, the default, draws all of them).
	CommitteeSize uint64
}

// Network is what InitNetwork wrote.
type Network struct {
	ChainID    string             `json:"chain_id"`
	Dir        string             `json:"dir"`
	Validators []NetworkValidator `json:"validators"`
	// Accounts are the genesis beneficiaries whose keys are in Dir/keys.
	Accounts []NetworkAccount `json:"accounts"`
	// Funded are the accounts of NetworkOptions.Funds; their keys are their owners'.
	Funded []NetworkAccount `json:"funded,omitempty"`
}

// NetworkValidator is one validator of a Network.
type NetworkValidator struct {
	Name      string       `json:"name"`
	Host      string       `json:"host,omitempty"` // its machine, from NetworkOptions.Hosts; empty on loopback
	Home      string       `json:"home"`
	Account   keys.Address `json:"account"`
	KeyFile   string       `json:"key_file"`
	NodeID    string       `json:"node_id"`
	Stake     uint64       `json:"stake_uomni"`
	RPCListen string       `json:"rpc_listen"`
	P2PListen string       `json:"p2p_listen"`
}

// RPCURL is the validator's CometBFT RPC endpoint.
func (v NetworkValidator) RPCURL() string { return "http://" + v.dialAddr(v.RPCListen) }

// P2PAddress is where its peers dial it: its host and P2P port.
func (v NetworkValidator) P2PAddress() string { return v.dialAddr(v.P2PListen) }

// dialAddr is listen with the validator's host in place of the address it binds.
func (v NetworkValidator) dialAddr(listen string) string {
	if v.Host == "" {
		return listen
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	return net.JoinHostPort(v.Host, port)
}

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
		stride := PortStride
		if len(o.Hosts) > 0 {
			stride = 0 // each on its own machine
		}
		if last := o.BasePort + (o.Validators-1)*stride; o.BasePort < 2 || last > 65535 {
			return fmt.Errorf("chain: base port %d gives ports %d..%d for %d validators; choose a base port between 2 and %d",
				o.BasePort, o.BasePort-1, last, o.Validators, 65535-(o.Validators-1)*stride)
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
	for _, f := range o.Funds {
		if err := f.Address.Validate(); err != nil {
			return fmt.Errorf("chain: funded account %q: %w", f.Address, err)
		}
		if f.Balance == 0 || f.Vesting != nil {
			return fmt.Errorf("chain: funded account %s: want an unlocked balance above zero", f.Address)
		}
	}
	return o.checkHosts()
}

// checkHosts accepts one distinct host per validator, on fixed ports.
func (o *NetworkOptions) checkHosts() error {
	if len(o.Hosts) == 0 {
		return nil
	}
	if len(o.Hosts) != o.Validators {
		return fmt.Errorf("chain: %d hosts for %d validators; name one host per validator", len(o.Hosts), o.Validators)
	}
	if o.BasePort == 0 {
		return errors.New("chain: validators on their own hosts need a fixed base port (port 0 picks free ports on this machine only)")
	}
	seen := map[string]bool{}
	for _, h := range o.Hosts {
		if h == "" || strings.ContainsAny(h, "@,/ \t") || strings.Contains(h, ":") && net.ParseIP(h) == nil {
			return fmt.Errorf("chain: host %q: want a DNS name or an IP address, without a port", h)
		}
		if seen[h] {
			return fmt.Errorf("chain: host %q is named twice; validators sharing a machine need no hosts (they use 127.0.0.1 and distinct ports)", h)
		}
		seen[h] = true
	}
	return nil
}

// InitNetwork creates the homes, keys and one shared genesis of a network whose validators
// all run on this machine's loopback interface, or each on its own host (Hosts), each
// started with LoadOptions on its home.
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
	ports, err := networkPorts(opts.BasePort, opts.Validators, len(opts.Hosts) > 0)
	if err != nil {
		return Network{}, err
	}

	params := ledger.DefaultParams()
	params.Routers = opts.Routers
	params.CommitteeSize = opts.CommitteeSize
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
		var host string
		if len(opts.Hosts) > 0 {
			host = opts.Hosts[i]
		}
		nw.Validators = append(nw.Validators, NetworkValidator{
			Name: vk.Name, Host: host, Home: home, Account: v.Address, KeyFile: keyFile, NodeID: vk.NodeID, Stake: v.Stake,
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
	b.Carve = opts.Funds
	for _, f := range opts.Funds {
		nw.Funded = append(nw.Funded, NetworkAccount{Name: "funded", Address: f.Address, Balance: f.Balance})
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
				hc.PersistentPeers = append(hc.PersistentPeers, peer.NodeID+"@"+peer.P2PAddress())
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
// until all are chosen so that no two coincide. Validators on their own hosts all listen
// on every interface at base and base-1.
func networkPorts(base, n int, ownHosts bool) ([]listenPorts, error) {
	host, stride := "127.0.0.1", PortStride
	if ownHosts {
		host, stride = "0.0.0.0", 0
	}
	out := make([]listenPorts, n)
	if base != 0 {
		for i := range out {
			rpc := base + i*stride
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
		l, err := listenFree(host)
		if err != nil {
			return "", fmt.Errorf("chain: %w", err)
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
