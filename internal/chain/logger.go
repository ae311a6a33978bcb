package chain

import (
	"context"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// slogAdapter sends CometBFT's logs to slog. CometBFT logs every block at Info, which
// drowns a devnet's own output, so its Info becomes Debug.
type slogAdapter struct{ l *slog.Logger }

func newLogger(l *slog.Logger) cmtlog.Logger { return slogAdapter{l.With("module", "cometbft")} }

func (a slogAdapter) Debug(msg string, kv ...any) {
	a.l.Log(context.Background(), slog.LevelDebug-4, msg, kv...)
}
func (a slogAdapter) Info(msg string, kv ...any)  { a.l.Debug(msg, kv...) }
func (a slogAdapter) Error(msg string, kv ...any) { a.l.Warn(msg, kv...) }
func (a slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{a.l.With(kv...)}
}
