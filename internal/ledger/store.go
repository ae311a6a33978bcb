package ledger

// Reader reads state. Iterate visits keys with the prefix in ascending byte order until fn
// returns false.
type Reader interface {
	Get(key []byte) ([]byte, error)
	Iterate(prefix []byte, fn func(key, value []byte) bool) error
}

// Store is the versioned state the ledger runs on. Writes go to a working set; WorkingHash
// covers them and depends only on the resulting content, never on the order of the writes
// (so the ledger may flush a block's writes in any order); Commit persists them atomically
// as the next version, so the height and the app hash are always written together.
type Store interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
	WorkingHash() []byte
	Commit() (hash []byte, version int64, err error)
	LastCommit() (version int64, hash []byte)
	// Committed returns a read-only view of the last committed version.
	Committed() (Reader, error)
}

// stager is a Store that also takes a write keyed by a string (a nil value deletes), which
// saves a block's flush a copy of every key, and can start hashing the writes it has in
// the background, so that little is left to hash when the block ends.
type stager interface {
	Stage(key string, value []byte)
	HashStaged()
}
