// Package docker runs consumers' container jobs on the node's Docker engine, hardened:
// no network, a read-only root filesystem, every capability dropped, no-new-privileges, a
// non-root user, pids, memory (no swap) and CPU limits, a small noexec /tmp, inputs mounted
// read-only at /inputs and one writable /outputs, and GPUs only through device requests for
// the devices the runtime granted the job and no other job.
//
// It speaks the documented Engine REST API over the unix socket with net/http; it must not
// import the Docker SDK, whose dependency tree the project keeps out. It owns the containers
// labelled with its instance name: New removes the ones a crashed predecessor left.
package docker
