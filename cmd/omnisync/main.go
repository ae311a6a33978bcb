// Command omnisync runs every OmniSync role: devnet, chain, router, node, validator.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/omnisync/omnisync/internal/cli"
	"github.com/omnisync/omnisync/internal/gc"
)

func main() {
	gc.Tune(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
