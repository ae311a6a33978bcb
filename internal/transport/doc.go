// Package transport owns OmniSync's messaging layer: the embedded NATS server
// with JetStream, its WebSocket+TLS listener, ed25519 (NKEY) authentication and
// per-node permissions, the client side that nodes use to dial in, and
// content-addressed blobs in the JetStream object store.
//
// It is the only package that imports nats-server and nats.go; everything else
// talks to the network through the connections and helpers handed out here.
//
// Security model. The router's admin key (and a per-server internal key used
// to create buckets) get full rights, and only over in-process connections, so
// a leaked admin key is useless over the network. Every other client proves
// possession of an ed25519 key by signing the server nonce; ServerOptions.Authorize
// maps the key to a node id, and the node may then use:
//
//   - omni.node.<id>.>  publish and subscribe: the router talks to the node
//     here, and because only <id> can publish under it, the router can trust the
//     sender of anything it receives on omni.node.<id>.* (heartbeats, results);
//   - omni.router.>     publish (anyone authorised can, so the sender is not
//     authenticated by the subject);
//   - _INBOX.>          subscribe, plus one reply to any request it receives;
//   - the object-store buckets in ServerOptions.Buckets: put objects, read
//     metadata and read chunks through direct gets. Consumers cannot be created:
//     a consumer's deliver subject is not permission-checked by the server, so
//     that right would let a node make the server publish on any subject. Read
//     blobs with GetBlob, which does not need a consumer, not with
//     jetstream.ObjectStore.Get.
//
// Everything else is denied. Denials are asynchronous in NATS (Publish returns
// nil); Dial reports them through DialOptions.OnError wrapped in
// ErrPermissionDenied.
//
// Known limit: a node that may put into a bucket can also disturb it (overwrite
// object metadata, roll up the stream). Integrity is still guaranteed, since
// GetBlob verifies the content hash, but availability of a shared bucket rests
// on nodes behaving; the router should keep the only copy of anything it cannot
// afford to lose in a bucket that nodes cannot write.
package transport
