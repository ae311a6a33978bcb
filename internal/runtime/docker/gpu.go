package docker

import (
	"fmt"
	"slices"
	"sync"
)

// gpuPool hands out the GPUs the runtime was configured with, each to one job at a time.
type gpuPool struct {
	mu      sync.Mutex
	devices []string          // configured device ids, in the operator's order
	holder  map[string]string // device id -> job id holding it
}

func newGPUPool(devices []string) (*gpuPool, error) {
	p := &gpuPool{holder: map[string]string{}}
	for _, d := range devices {
		if d == "" || slices.Contains(p.devices, d) {
			return nil, fmt.Errorf("gpu device %q listed twice or empty", d)
		}
		p.devices = append(p.devices, d)
	}
	return p, nil
}

// acquire reserves exactly the GPUs a job asks for: the named ids when ids is non-empty
// (count, if set, must agree), else the first count free ones. It never waits: a job that
// asks for a GPU held by another job gets ErrGPUsBusy.
func (p *gpuPool) acquire(job string, count int, ids []string) ([]string, error) {
	if count < 0 || len(ids) > 0 && count != 0 && count != len(ids) {
		return nil, fmt.Errorf("%w: asks for %d GPUs but names %d", ErrRefused, count, len(ids))
	}
	if len(ids) == 0 && count == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var got []string
	if len(ids) > 0 {
		for _, id := range ids {
			switch {
			case !slices.Contains(p.devices, id):
				return nil, fmt.Errorf("%w: GPU %q is not one this runtime may use (%v)", ErrRefused, id, p.devices)
			case slices.Contains(got, id):
				return nil, fmt.Errorf("%w: GPU %q named twice", ErrRefused, id)
			case p.holder[id] != "":
				return nil, fmt.Errorf("%w: GPU %q is held by job %s", ErrGPUsBusy, id, p.holder[id])
			}
			got = append(got, id)
		}
	} else {
		if count > len(p.devices) {
			return nil, fmt.Errorf("%w: asks for %d GPUs, this runtime has %d", ErrRefused, count, len(p.devices))
		}
		for _, id := range p.devices {
			if len(got) < count && p.holder[id] == "" {
				got = append(got, id)
			}
		}
		if len(got) < count {
			return nil, fmt.Errorf("%w: %d of %d GPUs free, job asks for %d", ErrGPUsBusy, len(got), len(p.devices), count)
		}
	}
	for _, id := range got {
		p.holder[id] = job
	}
	return got, nil
}

func (p *gpuPool) release(ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		delete(p.holder, id)
	}
}
