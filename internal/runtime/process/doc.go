// Package process runs a job's command as a child process of the node daemon, for GPU hosts
// without Docker. It is NOT a sandbox: the job runs as the daemon's user, sees the host's
// files and network, and can do whatever that user can. What it does give is a fresh
// scratch directory (inputs copied in read-only, an outputs directory), a scrubbed
// environment, resource limits set with setrlimit before the command starts, and a timeout
// that kills the whole process group. So it is off unless an operator enables it and names
// the consumers it trusts; a task from anyone else is refused.
//
// Limits are applied by re-executing the daemon's own binary as a small shim (argv[0]
// "omnisync-process-shim", caught by this package's init) that calls setrlimit and then
// execs the command: Go's SysProcAttr has no rlimit field, and setting limits on the
// daemon itself would limit the daemon.
package process
