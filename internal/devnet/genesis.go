package devnet

import (
	"github.com/omnisync/omnisync/internal/keys"
	"github.com/omnisync/omnisync/internal/ledger"
)

const omni = ledger.UomniPerOMNI

// Devnet accounts, carved out of the public-sale allocation.
const (
	consumerFunds  = 10_000 * omni // unless Options.ConsumerFunds says otherwise
	nodeFunds      = 1_000 * omni
	validatorStake = 10_000 * omni
	nodeStake      = 500 * omni
)

// consensusStake is the genesis stake of the devnet's consensus validator when it runs
// verifiers extra validators (Options.Verifiers), each funded with validatorStake to stake
// once the chain is up. They run no consensus node, so their CometBFT power must stay far
// below the third that would halt the chain: the consensus validator holds 100 times
// theirs together, about 99% of the voting power. Without verifiers it is validatorStake,
// as it always was.
func consensusStake(verifiers int) uint64 {
	if verifiers <= 0 {
		return validatorStake
	}
	return 100 * uint64(verifiers) * validatorStake
}

// devnetGenesis lays out the whitepaper's tokenomics (ledger.Tokenomics) with the devnet's
// own beneficiaries: team and investor keys under their vesting schedules, the demo
// consumer (given funds uomni, consumerFunds if 0), node operators and extra validators
// carved out of the public sale, and one validator whose consensus key is the CometBFT
// key of the devnet's chain.
func devnetGenesis(k Keys, consensusKey []byte, start int64, funds uint64) (ledger.Genesis, error) {
	if funds == 0 {
		funds = consumerFunds
	}
	p := ledger.DefaultParams()
	p.Routers = []keys.Address{keys.AddressOfKey(k.Router)}
	p.QuarterBlocks = 3600 // a devnet "quarter" is about 15 minutes of 250 ms blocks
	p.GovVotingBlocks = 120
	p.UnbondingSeconds = 60
	addr := keys.AddressOfKey
	b := ledger.Beneficiaries{
		Team:       []keys.Address{addr(k.Team)},
		Investors:  []keys.Address{addr(k.Investors)},
		PublicSale: []keys.Address{addr(k.PublicSale)},
		Liquidity:  []keys.Address{addr(k.Liquidity)},
		Carve:      []ledger.GenesisAccount{{Address: addr(k.Consumer), Balance: funds}},
		Validators: []ledger.Validator{{Address: addr(k.Validator), PubKey: consensusKey, Stake: consensusStake(len(k.Verifiers))}},
	}
	for _, n := range k.Nodes {
		b.Carve = append(b.Carve, ledger.GenesisAccount{Address: addr(n), Balance: nodeFunds})
	}
	for _, v := range k.Verifiers {
		b.Carve = append(b.Carve, ledger.GenesisAccount{Address: addr(v), Balance: validatorStake})
	}
	return ledger.Tokenomics(start, p, b)
}

// profile is a demo node's declared hardware and bid. The devnet runs every node on the
// native runtime on this machine's CPU; the profiles give the router something real to
// choose between and are labelled as simulated wherever they are shown.
type profile struct {
	hw    ledger.Hardware
	price uint64
}

var profiles = []profile{
	{ledger.Hardware{GPUModel: "sim RTX 4090", GPUs: 1, VRAMMiB: 24_576, TFLOPSMilli: 82_600, Region: "eu-central", LatE6: 50_110_000, LonE6: 8_680_000}, 1_800_000},
	{ledger.Hardware{GPUModel: "sim RTX 3090", GPUs: 1, VRAMMiB: 24_576, TFLOPSMilli: 35_600, Region: "us-east", LatE6: 38_950_000, LonE6: -77_450_000}, 900_000},
	{ledger.Hardware{GPUModel: "sim A100 40GB", GPUs: 1, VRAMMiB: 40_960, TFLOPSMilli: 156_000, Region: "ap-northeast", LatE6: 35_680_000, LonE6: 139_760_000}, 2_400_000},
}

func profileFor(i int) profile { return profiles[i%len(profiles)] }
