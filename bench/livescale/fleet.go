package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnisync/omnisync/internal/protocol"
	"github.com/omnisync/omnisync/internal/transport"
)

// fleet is the simulator's connections, each heartbeating for its share of the nodes at
// the router's pace, spread evenly over the interval as independent nodes would be.
type fleet struct {
	own    time.Duration
	conns  []*nats.Conn
	paceNs atomic.Int64
	sent   atomic.Uint64
	errors atomic.Uint64
}

// tick is how often each connection publishes the heartbeats that came due.
const tick = 20 * time.Millisecond

func startFleet(ctx context.Context, c config, url, tlsDir string) (*fleet, error) {
	files, err := transport.EnsureTLS(tlsDir, nil) // the router's, made already
	if err != nil {
		return nil, err
	}
	roots, err := files.ClientRootCAs()
	if err != nil {
		return nil, err
	}
	f := &fleet{own: c.own}
	ids := nodeIDs(c.nodes)
	for i := 0; i*c.perConn < len(ids); i++ {
		conn, err := transport.Dial(ctx, transport.DialOptions{
			URL: url, Key: fleetKey(i), RootCAs: roots, Name: fmt.Sprintf("livescale-%d", i),
			OnError: func(error) { f.errors.Add(1) },
		})
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", i, err)
		}
		if _, err := conn.Subscribe(protocol.PaceSubject, f.onPace); err != nil {
			return nil, err
		}
		f.conns = append(f.conns, conn)
		go f.heartbeat(ctx, conn, ids[i*c.perConn:min((i+1)*c.perConn, len(ids))])
	}
	return f, nil
}

func (f *fleet) onPace(m *nats.Msg) {
	if p, err := protocol.Decode[protocol.Pace](m.Data); err == nil {
		f.paceNs.Store(int64(p.Interval()))
	}
}

// pace is the interval the simulated nodes heartbeat at: the node daemon's rule, the
// slower of their own interval and the router's pace.
func (f *fleet) pace() time.Duration {
	return max(f.own, time.Duration(f.paceNs.Load()))
}

func (f *fleet) heartbeat(ctx context.Context, conn *nats.Conn, ids []string) {
	t := time.NewTicker(tick)
	defer t.Stop()
	next, due := 0, 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due += float64(len(ids)) * float64(tick) / float64(f.pace())
		for ; due >= 1; due-- {
			id := ids[next]
			next = (next + 1) % len(ids)
			hb := protocol.Heartbeat{ID: id, Role: protocol.RoleNode, GPUs: 8, FreeGPUs: next % 9, UtilizationPct: next % 101, Sent: time.Now().UTC()}
			if next%2 == 0 {
				hb.Containers = "docker"
			}
			if err := conn.Publish(protocol.HeartbeatSubject(id), protocol.Encode(hb)); err != nil {
				f.errors.Add(1)
				continue
			}
			f.sent.Add(1)
		}
	}
}
