package transport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestStartSessionRejectsIncompleteOptions(t *testing.T) {
	handle := func(context.Context, *nats.Msg) {}
	beat := func() (string, []byte) { return "x", nil }
	for name, o := range map[string]SessionOptions{
		"no inbox":     {Handle: handle, Beat: beat, Heartbeat: time.Second},
		"no handler":   {Inbox: "a", Beat: beat, Heartbeat: time.Second},
		"no heartbeat": {Inbox: "a", Handle: handle, Heartbeat: time.Second},
		"no interval":  {Inbox: "a", Handle: handle, Beat: beat},
	} {
		if _, err := StartSession(context.Background(), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: err = %v, want ErrInvalidOptions", name, err)
		}
	}
}
