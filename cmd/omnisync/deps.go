package main

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/cometbft/cometbft/node"
	_ "github.com/cometbft/cometbft/rpc/client/local"
	_ "github.com/cometbft/cometbft/rpc/client/http"
	_ "github.com/cosmos/iavl"
	_ "github.com/cosmos/iavl/db"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/nats-io/nats.go/jetstream"
	_ "github.com/nats-io/nkeys"
	_ "github.com/spf13/cobra"
	_ "github.com/mr-tron/base58"
)

func main() {}
