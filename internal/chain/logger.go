package chain

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// slogAdapter sends CometBFT's logs to slog. CometBFT logs every block at Info, which
// drowns a devnet's own output, so its Info becomes Debug; and while the node is stopping,
// its errors about closed listeners are expected, so they become Debug too.
type slogAdapter struct {
	l        *slog.Logger
	stopping *atomic.Bool
}

func newLogger(l *slog.Logger, stopping *atomic.Bool) cmtlog.Logger {
	return slogAdapter{l.With("module", "cometbft"), stopping}
}

func (a slogAdapter) Debug(msg string, kv ...any) {
	a.l.Log(context.Background(), slog.LevelDebug-4, msg, kv...)
}
func (a slogAdapter) Info(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a slogAdapter) Error(msg string, kv ...any) {
	// While peers are starting or restarting, failing to dial them is expected; CometBFT
	// keeps retrying and the persistent-peer logic reports what matters.
	if a.stopping.Load() || strings.HasPrefix(msg, "Error dialing peer") {
		a.l.Debug(msg, kv...)
		return
	}
	a.l.Warn(msg, kv...)
}

func (a slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{a.l.With(kv...), a.stopping}
}
