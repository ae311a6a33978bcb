package transport

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Subject namespaces shared with the router and the node daemon.
const (
	// NodeSubjectPrefix + id + "." + … is a node's private namespace.
	NodeSubjectPrefix = "omni.node."
	// RouterSubjectPrefix + … is where nodes publish to the router.
	RouterSubjectPrefix = "omni.router."
	// PaceSubject is where routers broadcast the heartbeat interval: participants may
	// listen, only the router may publish.
	PaceSubject = "omni.pace"
)

// rejectDelay is how long a rejected client waits for its error.
const rejectDelay = 100 * time.Millisecond

// replyWindow bounds how long, and how often, a node may answer one request.
const replyWindow = time.Minute

// InboxPrefix is the only reply subject space of the connection that authenticates with
// pub: "_INBOX.<nkey>". Every connection made by this package replies there, and a
// participant may subscribe to nothing else under _INBOX, so nobody overhears another's
// replies (DESIGN §9).
func InboxPrefix(pub ed25519.PublicKey) (string, error) {
	nkey, err := EncodeNkey(pub)
	if err != nil {
		return "", err
	}
	return "_INBOX." + nkey, nil
}

// EncodeNkey returns the NATS user NKEY ("U…") of an ed25519 public key.
func EncodeNkey(pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: ed25519 public key has %d bytes", ErrInvalidOptions, len(pub))
	}
	b, err := nkeys.Encode(nkeys.PrefixByteUser, pub)
	if err != nil {
		return "", fmt.Errorf("%w: encode nkey: %v", ErrInvalidOptions, err)
	}
	return string(b), nil
}

// nkeyRegistrar is the part of the server's client that ClientAuthentication
// does not expose; *server.client implements it.
type nkeyRegistrar interface {
	RegisterNkeyUser(*server.NkeyUser) error
}

// authenticator implements server.Authentication: it checks the nonce
// signature itself and assigns permissions per key.
type authenticator struct {
	admins    []ed25519.PublicKey // full rights, in-process connections only
	authorize func(ed25519.PublicKey) (string, bool)
	fleet     func(ed25519.PublicKey) []string // ServerOptions.SimulatedFleet
	log       *slog.Logger

	mu    sync.Mutex
	conns map[uint64]participant     // admitted non-admin connections, by server client id
	byID  map[string]map[uint64]bool // the same connections, by participant id
	// extraPublish, when set, adds publish rights; only the benchmark sets it, to
	// measure the direct object-store reads participants had before the blob service.
	extraPublish []string
}

// participant is an admitted connection's identity.
type participant struct {
	id  string
	pub ed25519.PublicKey
	// replies is InboxPrefix(pub) and a dot, what every reply subject of the connection
	// begins with ("" if pub has none), made once at admission: owns asks it of every
	// request the services answer.
	replies string
}

// Check is called by the server for every connecting client, concurrently,
// on that client's read goroutine.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	if a.allow(c) {
		return true
	}
	// Closing at once races the client's own writes: it can hit a broken
	// pipe before reading our "authorization violation" and report a vague
	// TLS error instead (seen in tests). The pause also slows key guessing,
	// and holds only this client's read goroutine.
	time.Sleep(rejectDelay)
	return false
}

func (a *authenticator) allow(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	opts := c.GetOpts()
	pub, err := verifyNonce(opts.Nkey, opts.Sig, c.GetNonce())
	if err != nil {
		a.log.Warn("nats client rejected", "remote", c.RemoteAddress(), "err", err)
		return false
	}
	reg, ok := c.(nkeyRegistrar)
	if !ok {
		a.log.Error("nats client rejected: server client cannot register nkey users")
		return false
	}
	user := &server.NkeyUser{Nkey: opts.Nkey}
	if a.isAdmin(pub) {
		if !isInProcess(c) {
			a.log.Warn("nats client rejected: admin key used over the network", "remote", c.RemoteAddress())
			return false
		}
	} else if ids := a.fleetOf(pub); len(ids) > 0 {
		// A simulator's connection: heartbeats only, so it is not a participant (no
		// blob rights, nothing for Reauthorize to withdraw).
		user.Permissions = fleetPermissions(ids, opts.Nkey)
	} else {
		id, ok := a.authorize(pub)
		if !ok || !validNodeID(id) {
			a.log.Info("nats client rejected: key not authorized", "nkey", opts.Nkey, "remote", c.RemoteAddress(), "node_id", id)
			return false
		}
		user.Permissions = nodePermissions(id, opts.Nkey)
		a.mu.Lock()
		p := participant{id: id, pub: pub}
		if prefix, err := InboxPrefix(pub); err == nil {
			p.replies = prefix + "."
		}
		a.conns[c.GetID()] = p
		if a.byID[id] == nil {
			a.byID[id] = map[uint64]bool{}
		}
		a.byID[id][c.GetID()] = true
		user.Permissions.Publish.Allow = append(user.Permissions.Publish.Allow, a.extraPublish...)
		a.mu.Unlock()
	}
	if err := reg.RegisterNkeyUser(user); err != nil {
		a.log.Error("nats client rejected: register user", "nkey", opts.Nkey, "err", err)
		return false
	}
	return true
}

func (a *authenticator) fleetOf(pub ed25519.PublicKey) []string {
	if a.fleet == nil {
		return nil
	}
	ids := a.fleet(pub)
	for _, id := range ids {
		if !validNodeID(id) {
			return nil
		}
	}
	return ids
}

// owns reports whether reply lies in the inbox of a connection admitted as id: only then
// may a service answer a request from id there. A reply subject is the requester's to
// choose, so without this check a participant could make a trusted service publish into
// another's namespace (omni.node.<victim>.result) or inbox.
func (a *authenticator) owns(id, reply string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for cid := range a.byID[id] {
		if p := a.conns[cid]; p.replies != "" && strings.HasPrefix(reply, p.replies) {
			return true
		}
	}
	return false
}

// admitted lists the admitted connections.
func (a *authenticator) admitted() map[uint64]participant {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[uint64]participant, len(a.conns))
	for cid, p := range a.conns {
		out[cid] = p
	}
	return out
}

func (a *authenticator) forget(cid uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.conns[cid].id
	delete(a.conns, cid)
	if delete(a.byID[id], cid); len(a.byID[id]) == 0 {
		delete(a.byID, id)
	}
}

func (a *authenticator) isAdmin(pub ed25519.PublicKey) bool {
	for _, k := range a.admins {
		if k.Equal(pub) {
			return true
		}
	}
	return false
}

// verifyNonce checks that sig is the signature of nonce by the user NKEY nkey
// and returns the ed25519 key behind it.
func verifyNonce(nkey, sig string, nonce []byte) (ed25519.PublicKey, error) {
	if nkey == "" || sig == "" {
		return nil, fmt.Errorf("%w: no nkey or signature presented", ErrUnauthorized)
	}
	if len(nonce) == 0 {
		return nil, fmt.Errorf("%w: server issued no nonce", ErrUnauthorized)
	}
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(nkey))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: malformed user nkey", ErrUnauthorized)
	}
	s, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		// Some clients pad; the server's own nkey check accepts both.
		if s, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return nil, fmt.Errorf("%w: signature is not base64", ErrUnauthorized)
		}
	}
	pub := ed25519.PublicKey(raw)
	if !ed25519.Verify(pub, nonce, s) {
		return nil, fmt.Errorf("%w: bad nonce signature", ErrUnauthorized)
	}
	return pub, nil
}

// isInProcess reports whether the client came through Server.InProcessConn
// (a net.Pipe) rather than a network listener.
func isInProcess(c server.ClientAuthentication) bool {
	addr := c.RemoteAddress()
	return addr != nil && addr.Network() == "pipe"
}

// validNodeID accepts ids that are exactly one subject token.
func validNodeID(id string) bool {
	return id != "" && !strings.ContainsAny(id, ".*> \t\r\n")
}

// nodePermissions is everything a participant may do; the rest is denied. It has no
// JetStream or object-store rights at all: blobs move only through the server's blob
// service, which checks each request against the participant's rights to that job.
func nodePermissions(id, nkey string) *server.Permissions {
	own := NodeSubjectPrefix + id + ".>"
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{own, RouterSubjectPrefix + ">", capacityAsk(id)}},
		Subscribe: &server.SubjectPermission{Allow: []string{own, "_INBOX." + nkey + ".>", PaceSubject}},
		Response:  &server.ResponsePermission{MaxMsgs: 1, Expires: replyWindow},
	}
}

// capacityAsk is the one subject of other participants' namespaces a participant may
// publish to: a capacity challenge to any node, under a subject that ends in its own id
// (protocol.CapacitySubject), so that the node reads who asks from the subject. A
// validator needs it to time a node directly; a node that asks another is refused by
// that node, which answers validators only.
func capacityAsk(id string) string { return NodeSubjectPrefix + "*.capacity." + id }

// fleetPermissions let a simulator's connection publish the heartbeats of the nodes it
// simulates, and nothing else of theirs; it hears the pace and its own replies.
func fleetPermissions(ids []string, nkey string) *server.Permissions {
	pub := make([]string, len(ids))
	for i, id := range ids {
		pub[i] = NodeSubjectPrefix + id + ".heartbeat"
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX." + nkey + ".>", PaceSubject}},
	}
}

func objectStream(bucket string) string { return "OBJ_" + bucket }
