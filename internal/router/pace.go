package router

import (
	"time"

	"github.com/omnisync/omnisync/internal/protocol"
)

// DefaultHeartbeatRate is how many heartbeats a second a router asks its participants for,
// all together, unless Options say otherwise.
const DefaultHeartbeatRate = 10_000

// Pace bounds: the pace is a multiple of paceStep, so that a few participants coming and
// going do not change it, and it is broadcast again every paceRepeat for the participants
// that connected since.
const (
	minPace    = time.Second
	paceStep   = 500 * time.Millisecond
	paceRepeat = 10 * time.Second
)

// heartbeatPace is the interval at which online participants, heartbeating evenly, send
// the router about rate heartbeats a second; never below minPace, and never above a third
// of ttl, so that a participant that keeps the pace can miss two heartbeats and still
// count as online.
func heartbeatPace(online, rate int, ttl time.Duration) time.Duration {
	d := time.Duration(online) * time.Second / time.Duration(max(rate, 1))
	d = (d + paceStep - 1) / paceStep * paceStep
	return min(max(d, minPace), ttl/3)
}

// paceState is what broadcastPace last sent; housekeeping owns it.
type paceState struct {
	pace time.Duration
	sent time.Time
}

// broadcastPace tells every participant the pace for the participants online now, when it
// changed or paceRepeat after it was last told.
func (r *Router) broadcastPace(st *paceState, now time.Time) {
	pace := heartbeatPace(r.onlineCount(), r.opts.HeartbeatRate, r.opts.HeartbeatTTL)
	if pace == st.pace && now.Sub(st.sent) < paceRepeat {
		return
	}
	if err := r.conn.Publish(protocol.PaceSubject, protocol.Encode(protocol.Pace{HeartbeatMillis: pace.Milliseconds()})); err != nil {
		r.log.Debug("pace not broadcast", "err", err)
		return
	}
	if pace != st.pace {
		r.log.Debug("heartbeat pace", "interval", pace)
	}
	st.pace, st.sent = pace, now
}

// onlineCount counts the participants heard from within the heartbeat TTL.
func (r *Router) onlineCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, at := range r.when {
		if time.Since(at) <= r.opts.HeartbeatTTL {
			n++
		}
	}
	return n
}
