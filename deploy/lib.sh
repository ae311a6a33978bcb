# Shared by deploy/init, up, demo and down (sourced, not run).
# shellcheck shell=bash

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$DEPLOY/.." && pwd)
STATE=$DEPLOY/state
BUILD=$DEPLOY/build
BIN=$BUILD/omnisync
TOOL=$BUILD/tool
IMAGE=omnisync:dev
PROJECT=omnisync
export OMNISYNC_REST_PORT=${OMNISYNC_REST_PORT:-7070}
export OMNISYNC_REST_PORT_2=${OMNISYNC_REST_PORT_2:-7071}
export OMNISYNC_REST_PORT_3=${OMNISYNC_REST_PORT_3:-7072}
export OMNISYNC_RPC_PORT=${OMNISYNC_RPC_PORT:-26657}
REST_URL=http://127.0.0.1:$OMNISYNC_REST_PORT
REST_URL_2=http://127.0.0.1:$OMNISYNC_REST_PORT_2
REST_URL_3=http://127.0.0.1:$OMNISYNC_REST_PORT_3
RPC_URL=http://127.0.0.1:$OMNISYNC_RPC_PORT
NODES=6
ROUTERS=3
VALIDATORS=4

# One clock for deploy/up and the deploy/init it runs.
export OMNISYNC_DEPLOY_STARTED=${OMNISYNC_DEPLOY_STARTED:-${EPOCHREALTIME//[!0-9]/}}
started=$OMNISYNC_DEPLOY_STARTED

# elapsed is the time since the script started, e.g. 12.3s.
elapsed() {
	local us=$((${EPOCHREALTIME//[!0-9]/} - started))
	printf '%d.%ds' $((us / 1000000)) $((us % 1000000 / 100000))
}

# step prints a progress line with the time since the script started.
step() { printf '[%7s] %s\n' "$(elapsed)" "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

compose() { docker-compose -p "$PROJECT" -f "$DEPLOY/compose.yaml" "$@"; }

# Containers run as the owner of deploy/state: deploy/init makes it nobody (65534) when
# run as root, else it is the invoking user. Never root.
owner() {
	OMNISYNC_UID=$(stat -c %u "$STATE")
	OMNISYNC_GID=$(stat -c %g "$STATE")
	[ "$OMNISYNC_UID" != 0 ] || die "$STATE is owned by root; containers never run as root: run deploy/down --purge, then deploy/up"
	export OMNISYNC_UID OMNISYNC_GID
}

# build_binaries builds the static omnisync binary the image holds and the helper that
# makes TLS files and submits the demo job; go build skips what is up to date.
build_binaries() {
	mkdir -p "$BUILD"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$BIN" ./cmd/omnisync)
	(cd "$ROOT" && go build -o "$TOOL" ./deploy/tool)
}

# json_field FIELD reads the first "FIELD": "value" of the JSON on stdin (no jq needed).
json_field() { sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
