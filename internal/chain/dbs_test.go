package chain

import (
	"sync"
	"testing"

	cfg "github.com/cometbft/cometbft/config"
)

// Seen in CI's race run (2026-12-01): a consensus reactor goroutine read the block store
// after the databases closed, 200 ms after the node stopped, and the block store panicked
// on the "leveldb: closed" it got. Reads through the tracker find nothing once it has
// closed the databases, however late they come, and never an error.
func TestReadsAfterTheDatabasesCloseFindNothing(t *testing.T) {
	c := cfg.DefaultConfig()
	c.SetRoot(t.TempDir())
	tr := &dbTracker{}
	db, err := tr.provider(&cfg.DBContext{ID: "blockstore", Config: c})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("seen-commit")
	if err := db.Set(key, []byte("commit")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(key); err != nil || string(v) != "commit" {
		t.Fatalf("before the close: %q, %v", v, err)
	}
	if err := db.Close(); err != nil { // the node's own close is put off
		t.Fatal(err)
	}
	if v, err := db.Get(key); err != nil || string(v) != "commit" {
		t.Fatalf("after the node's close: %q, %v", v, err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 { // reactor goroutines still reading as the tracker closes the databases
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := db.Get(key); err != nil {
					t.Errorf("a read as the databases close: %v", err)
					return
				}
				if _, err := db.Has(key); err != nil {
					t.Errorf("a read as the databases close: %v", err)
					return
				}
			}
		})
	}
	tr.closeAll()
	close(stop)
	wg.Wait()
	if v, err := db.Get(key); v != nil || err != nil {
		t.Fatalf("after the databases closed: %q, %v; want nothing, no error", v, err)
	}
	if has, err := db.Has(key); has || err != nil {
		t.Fatalf("after the databases closed: has %v, %v; want false, no error", has, err)
	}
}
