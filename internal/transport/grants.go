package transport

import (
	"fmt"
	"slices"
	"sync"
)

// Grants is a BlobAccess made of explicit, revocable grants: which participant may read
// which digest, and which may write, up to a size, as work for which job. The router
// grants a job's inputs to the node it dispatches the job to and its inputs and output
// to the validators that check it, and revokes them when that step ends. Grants of the
// same right are counted, so two jobs that share an input do not revoke each other's.
type Grants struct {
	mu     sync.Mutex
	reads  map[[2]string]int     // {id, digest} → grants outstanding
	writes map[[2]string][]int64 // {id, job} → the size bound of each grant outstanding
}

// NewGrants returns an empty grant table: it allows nothing.
func NewGrants() *Grants {
	return &Grants{reads: map[[2]string]int{}, writes: map[[2]string][]int64{}}
}

// AllowRead lets participant id read the digests until revoke is called (once).
func (g *Grants) AllowRead(id string, digests ...string) (revoke func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, d := range digests {
		g.reads[[2]string{id, d}]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			for _, d := range digests {
				k := [2]string{id, d}
				if g.reads[k]--; g.reads[k] <= 0 {
					delete(g.reads, k)
				}
			}
		})
	}
}

// AllowWrite lets participant id store blobs of at most maxBytes each as work for job
// until revoke is called (once).
func (g *Grants) AllowWrite(id, job string, maxBytes int64) (revoke func()) {
	k := [2]string{id, job}
	g.mu.Lock()
	g.writes[k] = append(g.writes[k], maxBytes)
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			bounds := g.writes[k]
			for i, b := range bounds {
				if b == maxBytes {
					bounds = append(bounds[:i], bounds[i+1:]...)
					break
				}
			}
			if len(bounds) == 0 {
				delete(g.writes, k)
			} else {
				g.writes[k] = bounds
			}
		})
	}
}

// MayRead implements BlobAccess.
func (g *Grants) MayRead(id, digest string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reads[[2]string{id, digest}] == 0 {
		return fmt.Errorf("%s holds no job that needs %s", id, digest)
	}
	return nil
}

// MayWrite implements BlobAccess.
func (g *Grants) MayWrite(id, job, digest string, size int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	bounds := g.writes[[2]string{id, job}]
	if len(bounds) == 0 {
		return fmt.Errorf("%s is not running job %q", id, job)
	}
	if most := slices.Max(bounds); size > most {
		return fmt.Errorf("%s is %d bytes, more than job %q may store (%d)", digest, size, job, most)
	}
	return nil
}
