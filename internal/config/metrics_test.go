package config

import (
	"errors"
	"strings"
	"testing"
)

func TestCometBFTMetricsListen(t *testing.T) {
	tests := []struct {
		setting, rpc, want string
	}{
		{MetricsAuto, "127.0.0.1:26657", "127.0.0.1:26660"}, // validator-1: CometBFT's usual port
		{MetricsAuto, "127.0.0.1:26667", "127.0.0.1:26670"}, // validator-2, PortStride on
		{MetricsAuto, "0.0.0.0:26657", "127.0.0.1:26660"},   // on its own host: still loopback
		{MetricsAuto, "127.0.0.1:0", "127.0.0.1:0"},         // free ports: a free one
		{"0.0.0.0:9100", "127.0.0.1:26657", "0.0.0.0:9100"},
		{"", "127.0.0.1:26657", ""},
	}
	for _, tt := range tests {
		if got := (Chain{CometBFTMetricsAddr: tt.setting}).CometBFTMetricsListen(tt.rpc); got != tt.want {
			t.Errorf("%q with RPC on %s: %q, want %q", tt.setting, tt.rpc, got, tt.want)
		}
	}
}

func TestMetricsAddressesAreOffByDefaultAndChecked(t *testing.T) {
	c := Default()
	if c.Node.MetricsAddr != "" || c.Validator.MetricsAddr != "" || c.Chain.CometBFTMetricsAddr != MetricsAuto {
		t.Fatalf("defaults: node %q, validator %q, chain %q", c.Node.MetricsAddr, c.Validator.MetricsAddr, c.Chain.CometBFTMetricsAddr)
	}
	for _, tt := range []struct{ role, flag string }{
		{RoleNode, "--metrics-addr"}, {RoleValidator, "--metrics-addr"}, {RoleChain, "--cometbft-metrics-addr"},
	} {
		c, err := load(t, "", nil, tt.role, tt.flag, "9464")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(tt.role); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "metrics_addr") {
			t.Errorf("%s %s 9464: %v, want it refused (not host:port)", tt.role, tt.flag, err)
		}
	}
}
