// Package transport owns OmniSync's messaging layer: the embedded NATS server
// with JetStream, its WebSocket+TLS listener, ed25519 (NKEY) authentication and
// per-node permissions, the client side that nodes use to dial in, and
// content-addressed blobs in the JetStream object store.
//
// It is the only package that imports nats-server and nats.go; everything else
// talks to the network through the connections and helpers handed out here.
//
// Security model. The router's admin key (and a per-server internal key that
// creates buckets and runs the blob service) get full rights, and only over
// in-process connections, so a leaked admin key is useless over the network. Every
// other client proves possession of an ed25519 key by signing the server nonce;
// ServerOptions.Authorize maps the key to a node id, and the node may then use:
//
//   - omni.node.<id>.>  publish and subscribe: the router talks to the node
//     here, and because only <id> can publish under it, the router (and the blob
//     service) can trust the sender of anything it receives on omni.node.<id>.*;
//   - omni.router.>     publish (anyone authorised can, so the sender is not
//     authenticated by the subject);
//   - _INBOX.<its nkey>.> subscribe: its own inbox (InboxPrefix), which every
//     connection made here uses, plus one reply to any request it receives.
//
// Everything else is denied: no JetStream API, no object-store subject, nobody
// else's inbox. Blobs move only through the blob service (Blobs on the participant
// side), which asks ServerOptions.Access about every request, reads only the chunks
// of the object asked for, answers only into the requester's own inbox, and files an
// upload under its digest only after hashing every byte, so a stored name never
// changes content and only trusted writers write metadata. Server.Reauthorize
// disconnects participants whose standing the chain has withdrawn.
//
// Denials are asynchronous in NATS (Publish returns nil); Dial reports them
// through DialOptions.OnError wrapped in ErrPermissionDenied.
package transport
