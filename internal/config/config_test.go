package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/omnisync/omnisync/internal/ledger"
	"github.com/omnisync/omnisync/internal/validator"
)

// load runs Load with a file holding doc (none if empty), env as the environment, and
// args parsed as role's flags.
func load(t *testing.T, doc string, env map[string]string, role string, args ...string) (*Config, error) {
	t.Helper()
	in := Inputs{Role: role, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	if doc != "" {
		in.File = filepath.Join(t.TempDir(), "omnisync.toml")
		if err := os.WriteFile(in.File, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if role != "" {
		in.Flags = pflag.NewFlagSet(role, pflag.ContinueOnError)
		BindFlags(in.Flags, role)
		if err := in.Flags.Parse(args); err != nil {
			t.Fatalf("parse %v: %v", args, err)
		}
	}
	return Load(in)
}

func setting(c *Config, key string) Setting {
	role, _, _ := strings.Cut(key, ".")
	for _, s := range c.Settings(role) {
		if s.Key == key {
			return s
		}
	}
	return Setting{}
}

func TestPrecedenceDefaultFileEnvFlag(t *testing.T) {
	const doc = `
[router]
rest_addr = "10.0.0.1:7070"
nodes_addr = "10.0.0.1:7422"
heartbeat_ttl = "3s"
max_attempts = 5
tls_hosts = ["router.example.org"]
`
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		key        string
		wantText   string
		wantSource Source
	}{
		{"default", nil, nil, "router.dispatch_timeout", "5s", FromDefault},
		{"file over default", nil, nil, "router.rest_addr", "10.0.0.1:7070", FromFile},
		{"env over file", map[string]string{"OMNISYNC_ROUTER_REST_ADDR": "10.0.0.2:7070"}, nil, "router.rest_addr", "10.0.0.2:7070", FromEnv},
		{"flag over env", map[string]string{"OMNISYNC_ROUTER_REST_ADDR": "10.0.0.2:7070"}, []string{"--rest-addr", "10.0.0.3:7070"}, "router.rest_addr", "10.0.0.3:7070", FromFlag},
		{"flag over file", nil, []string{"--heartbeat-ttl", "250ms"}, "router.heartbeat_ttl", "250ms", FromFlag},
		{"empty env is unset", map[string]string{"OMNISYNC_ROUTER_MAX_ATTEMPTS": ""}, nil, "router.max_attempts", "5", FromFile},
		{"shared env name", map[string]string{"OMNISYNC_RPC": "http://10.0.0.9:26657"}, nil, "router.chain_rpc", "http://10.0.0.9:26657", FromEnv},
		{"list from env", map[string]string{"OMNISYNC_ROUTER_TLS_HOSTS": "a.example, 10.0.0.1"}, nil, "router.tls_hosts", "a.example,10.0.0.1", FromEnv},
		{"repeated list flag", nil, []string{"--tls-host", "x.example", "--tls-host", "y.example,z.example"}, "router.tls_hosts", "x.example,y.example,z.example", FromFlag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, doc, tt.env, RoleRouter, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if s := setting(c, tt.key); s.Text != tt.wantText || s.Source != tt.wantSource {
				t.Errorf("%s = %q from %s, want %q from %s", tt.key, s.Text, s.Source, tt.wantText, tt.wantSource)
			}
			if err := c.Validate(RoleRouter); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// A flag of one role does not touch another role's settings, and the environment reaches
// every role (one machine may run several).
func TestFlagsApplyToTheirRoleOnly(t *testing.T) {
	c, err := load(t, "", map[string]string{"OMNISYNC_WALLET_DIR": "/w"}, RoleNode, "--wallet", "n1", "--min-price", "0.04")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Wallet != "n1" || c.Validator.Wallet != RoleValidator || c.Router.Wallet != RoleRouter {
		t.Errorf("wallets node %q validator %q router %q", c.Node.Wallet, c.Validator.Wallet, c.Router.Wallet)
	}
	if c.Node.MinPrice.Uomni != 40_000 {
		t.Errorf("min_price = %d uomni, want 40000", c.Node.MinPrice.Uomni)
	}
	for _, dir := range []string{c.Node.WalletDir, c.Router.WalletDir, c.Validator.WalletDir} {
		if dir != "/w" {
			t.Errorf("wallet_dir %q, want /w from OMNISYNC_WALLET_DIR", dir)
		}
	}
}

func TestFileValuesOfEveryType(t *testing.T) {
	const doc = `# a node and a validator on one machine
[node]
wallet = "gpu-box"
router = "wss://router.example.org:7422"
gpus = 8
vram_mib = 81_920
tflops = 989       # an integer where a number is wanted is fine
latitude = -33.87
longitude = 151.21
min_price = 0.04   # amounts are exact: as a number or a string
stake = "1000.5"
heartbeat = "1500ms"
`
	c, err := load(t, doc, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	if n.Wallet != "gpu-box" || n.GPUs != 8 || n.VRAMMiB != 81_920 || n.TFLOPS != 989 || n.Latitude != -33.87 || n.Longitude != 151.21 {
		t.Errorf("node = %+v", n)
	}
	if n.MinPrice.Uomni != 40_000 || n.Stake.Uomni != 1_000_500_000 || n.Heartbeat.Duration != 1500*time.Millisecond {
		t.Errorf("min_price %d, stake %d, heartbeat %s", n.MinPrice.Uomni, n.Stake.Uomni, n.Heartbeat)
	}
	hw := n.Hardware()
	if hw.TFLOPSMilli != 989_000 || hw.LatE6 != -33_870_000 || hw.LonE6 != 151_210_000 || hw.GPUs != 8 {
		t.Errorf("hardware = %+v", hw)
	}
	if err := c.Validate(RoleNode); err != nil {
		t.Error(err)
	}
	// Dotted keys and inline tables are the same settings.
	c, err = load(t, "node.gpus = 2\nvalidator = { rounds = 4 }\n", nil, "")
	if err != nil || c.Node.GPUs != 2 || c.Validator.Rounds != 4 {
		t.Errorf("dotted and inline: gpus %d rounds %d, %v", c.Node.GPUs, c.Validator.Rounds, err)
	}
}

func TestUnknownKeysNameTheKeyAndLine(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"misspelt key", "[router]\nrest_addr = \"127.0.0.1:1\"\nnode_addr = \"0.0.0.0:7422\"\n",
			[]string{"line 3: unknown key router.node_addr", "nodes_addr"}},
		{"unknown table", "[routers]\nwallet = \"r\"\n", []string{"line 1: unknown key \"routers\"", "[router]"}},
		{"top-level key", "\nwallet = \"r\"\n", []string{"line 2: unknown key \"wallet\""}},
		{"every one, in file order", "[node]\nzeta = 1\n\n[chain]\nalpha = 2\n",
			[]string{"line 2: unknown key node.zeta", "line 5: unknown key chain.alpha"}},
		{"inside an inline table", "node = { gpus = 1, gpu = 2 }\n", []string{"line 1: unknown key node.gpu"}},
		{"a role that is not a table", "router = \"r\"\n", []string{"line 1: router must be a table ([router])"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.doc, nil, "")
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if i, j := strings.Index(err.Error(), "line 2"), strings.Index(err.Error(), "line 5"); i > j && j >= 0 {
				t.Errorf("errors not in file order: %q", err)
			}
		})
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		env  map[string]string
		args []string
		want []string
	}{
		{"syntax", "[router]\nrest_addr = \n", nil, nil, []string{"line 2"}},
		{"duplicate key", "[node]\ngpus = 1\ngpus = 2\n", nil, nil, []string{"line 3: node.gpus is defined twice"}},
		{"bare number as duration", "[router]\n\nheartbeat_ttl = 5\n", nil, nil,
			[]string{"line 3: router.heartbeat_ttl: want a duration as a string, e.g. \"250ms\"", "the integer 5"}},
		{"bad duration text", "[router]\nverify_timeout = \"soon\"\n", nil, nil, []string{"line 2: router.verify_timeout", `"soon" is not a duration`}},
		{"string for an integer", "[router]\nmax_attempts = \"3\"\n", nil, nil, []string{"line 2: router.max_attempts: want a whole number", `the string "3"`}},
		{"float for an integer", "[node]\ngpus = 1.5\n", nil, nil, []string{"line 2: node.gpus: want a whole number"}},
		{"integer for a string", "[router]\nwallet = 7\n", nil, nil, []string{"line 2: router.wallet: want a string, got the integer 7"}},
		{"amount with too many decimals", "[node]\nmin_price = \"0.0000001\"\n", nil, nil, []string{"line 2: node.min_price", "more than 6 decimal places"}},
		{"negative amount", "[node]\nstake = -5\n", nil, nil, []string{"line 2: node.stake", "negative"}},
		{"list of numbers", "[router]\ntls_hosts = [1]\n", nil, nil, []string{"line 2: router.tls_hosts: want an array of strings"}},
		{"env", "", map[string]string{"OMNISYNC_ROUTER_MAX_ATTEMPTS": "many"}, nil,
			[]string{`OMNISYNC_ROUTER_MAX_ATTEMPTS="many" (router.max_attempts): want a whole number`}},
		{"env duration", "", map[string]string{"OMNISYNC_ROUTER_HEARTBEAT_TTL": "10"}, nil,
			[]string{"OMNISYNC_ROUTER_HEARTBEAT_TTL", `"10" is not a duration`}},
		{"flag", "", nil, []string{"--dispatch-timeout", "-1s"}, []string{`--dispatch-timeout "-1s"`, "negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.doc, tt.env, RoleRouter, tt.args...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestValidateNamesTheSettingAndItsOrigin(t *testing.T) {
	tests := []struct {
		name string
		role string
		doc  string
		env  map[string]string
		args []string
		want []string
	}{
		{"host:port from the file", RoleRouter, "[router]\nrest_addr = \"7070\"\n", nil, nil,
			[]string{"router.rest_addr", `"7070" is not host:port`, "from "}},
		{"url scheme from env", RoleNode, "", map[string]string{"OMNISYNC_NODE_ROUTER": "https://r:7422"}, nil,
			[]string{"node.router", "want a wss:// URL", "from OMNISYNC_NODE_ROUTER"}},
		{"zero from a flag", RoleRouter, "", nil, []string{"--max-attempts", "0"}, []string{"router.max_attempts", "at least 1", "from --max-attempts"}},
		{"one chain RPC of several", RoleValidator, "", map[string]string{"OMNISYNC_RPC": "http://v1:26657,ws://v2:26657"}, nil,
			[]string{"validator.chain_rpc", `"ws://v2:26657": want a http:// or https:// or tcp:// URL`, "from OMNISYNC_RPC"}},
		{"no chain RPC", RoleRouter, "[router]\nchain_rpc = \"\"\n", nil, nil, []string{"router.chain_rpc", "is not a URL"}},
		{"zero duration", RoleValidator, "[validator]\nheartbeat = \"0s\"\n", nil, nil, []string{"validator.heartbeat", "must be positive"}},
		{"validator containers", RoleValidator, "", nil, []string{"--containers", "process"}, []string{"validator.containers", `"process": want none or docker`, "from --containers"}},
		{"validator check_gpu", RoleValidator, "", nil, []string{"--check-gpu", "-1"}, []string{"validator.check_gpu", `"-1": want auto, off or a GPU index`, "from --check-gpu"}},
		{"latitude", RoleNode, "[node]\nlatitude = 91.0\n", nil, nil, []string{"node.latitude", "between -90 and 90"}},
		{"runtime", RoleNode, "[node]\nruntime = \"docker\"\n", nil, nil, []string{"node.runtime", `"docker": want native`}},
		{"gpu tier", RoleNode, "", map[string]string{"OMNISYNC_NODE_GPU_TIER": "h100"}, nil, []string{"node.gpu_tier", "auto-detect or declared"}},
		{"several at once", RoleNode, "[node]\ngpus = 0\nmin_price = \"0\"\n", nil, nil, []string{"node.gpus", "node.min_price"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.doc, tt.env, tt.role, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate(tt.role)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRequireSaysEveryWayToSetIt(t *testing.T) {
	c := Default()
	err := c.Require(RoleNode, "router")
	for _, w := range []string{"node.router is not set", "--router", "[node]", "OMNISYNC_NODE_ROUTER"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Require = %v, want it to mention %q", err, w)
		}
	}
	c.Node.Router = "wss://r:1"
	if err := c.Require(RoleNode, "router"); err != nil {
		t.Error(err)
	}
}

func TestDefaultsValidateAndMatchTheDaemons(t *testing.T) {
	c := Default()
	for _, role := range Roles {
		if err := c.Validate(role); err != nil {
			t.Errorf("defaults of %s: %v", role, err)
		}
		for _, s := range c.Settings(role) {
			if s.Source != FromDefault || !strings.HasPrefix(s.Env, "OMNISYNC_") || !strings.HasPrefix(s.Flag, "--") {
				t.Errorf("%+v", s)
			}
		}
	}
	ro, err := c.Router.Options()
	if err != nil || ro.Host != "0.0.0.0" || ro.WSPort != 7422 || ro.MaxAttempts != 3 {
		t.Errorf("router options %+v, %v", ro, err)
	}
	if no := c.Node.Options(); no.Stake != 500*ledger.UomniPerOMNI || no.Hardware.GPUModel != "sim RTX 4090" || no.Runtime.Name() != "native" {
		t.Errorf("node options %+v", no)
	}
}

// audit_every paces the validator's audits of attestations: 2s by default, as the daemon's
// own default; "0s" audits none, which the daemon's Options says with a negative; a
// negative setting is refused.
func TestValidatorAuditEvery(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want time.Duration
	}{
		{"default", nil, nil, 2 * time.Second},
		{"flag", nil, []string{"--audit-every", "500ms"}, 500 * time.Millisecond},
		{"off from env", map[string]string{"OMNISYNC_VALIDATOR_AUDIT_EVERY": "0s"}, nil, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, "", tt.env, RoleValidator, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(RoleValidator); err != nil {
				t.Fatal(err)
			}
			if got := c.Validator.Options().AuditEvery; got != tt.want {
				t.Errorf("AuditEvery %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := load(t, "[validator]\naudit_every = \"-1s\"\n", nil, RoleValidator); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "negative") {
		t.Errorf("a negative audit_every: %v", err)
	}
}

// output_patience is how long the validator looks for a committed output again before it
// finds it never uploaded: the daemon's default, or the setting from a flag or the file;
// zero is refused, as that would fail an honest node whose output a router cluster has not
// yet copied to the server the validator asks.
func TestValidatorOutputPatience(t *testing.T) {
	for _, tt := range []struct {
		name string
		file string
		args []string
		want time.Duration
	}{
		{"default", "", nil, validator.DefaultOutputPatience},
		{"flag", "", []string{"--output-patience", "10s"}, 10 * time.Second},
		{"file", "[validator]\noutput_patience = \"750ms\"\n", nil, 750 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.file, nil, RoleValidator, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(RoleValidator); err != nil {
				t.Fatal(err)
			}
			if got := c.Validator.Options().OutputPatience; got != tt.want {
				t.Errorf("OutputPatience %s, want %s", got, tt.want)
			}
		})
	}
	c, err := load(t, "[validator]\noutput_patience = \"0s\"\n", nil, RoleValidator)
	if err == nil {
		err = c.Validate(RoleValidator)
	}
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "validator.output_patience") {
		t.Errorf("output_patience = 0s: %v", err)
	}
}

// The example file the systemd units read is a valid configuration for every role.
func TestDeployExampleIsValid(t *testing.T) {
	c, err := Load(Inputs{File: "../../deploy/systemd/omnisync.toml", LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range Roles {
		if err := c.Validate(role); err != nil {
			t.Error(err)
		}
	}
	if c.Node.MinPrice.Uomni != 40_000 || c.Router.TLSHosts[0] != "router.example.org" || c.Chain.RESTAddr != "0.0.0.0:7070" {
		t.Errorf("example read as %+v", c)
	}
}
