#!/bin/sh
# Live scale (issue #12): one router, N simulated nodes heartbeating through its NATS server.
# Usage: bench/livescale.sh [NODES] [extra flags for ./bench/livescale]
set -eu
cd "$(dirname "$0")/.."
nodes=${1:-100000}
[ $# -gt 0 ] && shift
go build -o /tmp/omnisync-livescale ./bench/livescale
exec /tmp/omnisync-livescale -nodes "$nodes" "$@"
