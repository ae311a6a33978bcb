#!/bin/bash
# The GPU proof of issue #10, in one run on a machine with an NVIDIA GPU, its driver and
# python3 with PyTorch, and neither Go nor Docker (docs/gpu.md shows what it printed):
#   1. a devnet (chain, router, validator, three simulated CPU nodes) in the background;
#   2. three GPU nodes, each its own operator, that register with --gpu-tier auto-detect
#      (two through NVML, one through nvidia-smi, by a binary built with CGO_ENABLED=0) and
#      serve container jobs with the process runtime, for the devnet's consumer only;
#   3. a consumer's PyTorch job on the GPU, verification "redundant": all three run it and
#      are paid when their outputs agree; then node status, the job's logs and its output;
#   4. a 2048x2048 int8 product as a tensor job, which a GPU node computes on the GPU
#      (compute_gpu = auto) and the devnet's validator checks on it (check_gpu = auto);
#   5. what a Freivalds check of an int8 product costs in PyTorch on this GPU (freivalds.py).
# Usage: bench/gpu/run.sh BINDIR OUTDIR, BINDIR holding omnisync and omnisync-nocgo.
# JOB_PY replaces bench/gpu/job.py (for a rehearsal on a machine without a GPU);
# SKIP_FREIVALDS=1 skips step 5.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 out=$2
o="$bin/omnisync" onc="$bin/omnisync-nocgo"
job_py=${JOB_PY:-$here/job.py}
export HOME=${GPU_RUN_HOME:-/tmp/omnisync-gpu-run}
rm -rf "$HOME" && mkdir -p "$HOME" "$out"
dn=$HOME/devnet
step() { printf '\n=== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$bin/##g; s#$HOME#~#g"; "$@"; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT

step "machine"
uname -srm; nvidia-smi -L || echo "nvidia-smi: not found"
nvidia-smi --query-gpu=name,uuid,memory.total,compute_cap,clocks.max.sm,power.limit,driver_version --format=csv || true

step "devnet"
"$o" devnet --home "$dn" --docker off >"$out/devnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do grep -q 'Serving\.' "$out/devnet.log" && break; sleep 0.5; done
grep -q 'Serving\.' "$out/devnet.log" || { echo "devnet did not start:"; cat "$out/devnet.log"; exit 1; }
cat "$out/devnet.log"
run "$o" wallet import consumer "$dn/keys/consumer.json" >/dev/null
consumer=$("$o" wallet show -w consumer -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')

step "three GPU nodes register (auto-detect) and serve with the process runtime"
for i in 1 2 3; do
  bi=$o; [ $i = 2 ] && bi=$onc
  "$o" wallet new gpu$i >/dev/null
  addr=$("$o" wallet show -w gpu$i -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["address"])')
  "$o" wallet send -w consumer "$addr" 1000 >/dev/null
  [ $i = 2 ] && echo "(gpu2 is the binary built with CGO_ENABLED=0: no NVML, nvidia-smi instead)"
  run "$bi" node register -w gpu$i --gpu-tier auto-detect --min-price 0.04 --region us-east --latitude 40.71 --longitude -74.01
  "$bi" --log-level info node run -w gpu$i --router wss://127.0.0.1:7422 --router-ca "$dn/tls/ca.pem" \
    --containers process --process-consumers "$consumer" >"$out/node$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 60); do
  n=$(grep -l 'is serving jobs' "$out"/node*.log 2>/dev/null | wc -l); [ "$n" = 3 ] && break; sleep 0.5
done
echo "--- node 1's daemon"; cat "$out/node1.log"
sleep 2
run "$o" node status -w gpu1
"$o" node status -w gpu1 -o json >"$out/node-status.json"

step "a PyTorch job on the GPU, verified redundantly by three nodes"
pydir=$(dirname "$(command -v python3)")
envs=(--env "PATH=$pydir:/usr/local/bin:/usr/bin:/bin")
[ -n "${LD_LIBRARY_PATH:-}" ] && envs+=(--env "LD_LIBRARY_PATH=$LD_LIBRARY_PATH")
run "$o" job submit -w consumer --image local/pytorch:host --input "job.py=$job_py" "${envs[@]}" \
  --gpus 1 --memory 32 --max-price 1 --budget 1 --timeout 5m --wait -- python3 inputs/job.py | tee "$out/job.txt"
id=$(grep -o 'job-[0-9a-f]*' "$out/job.txt" | head -1)
if [ -n "$id" ]; then
  run "$o" job logs -w consumer "$id"
  run "$o" job result -w consumer "$id" -O "$HOME/results" &&
    find "$HOME/results/$id" -type f -name '*.txt' -exec sh -c 'echo "--- $1"; cat "$1"' _ {} \;
fi
run "$o" node status -w gpu1
run "$o" node status -w gpu2

step "a tensor job, checked by the validator on the GPU"
python3 - "$HOME" <<'PY'
import struct, sys, random
def npy(path, n):  # a 2-D int8 array in NumPy's format, without NumPy
    header = "{'descr': '|i1', 'fortran_order': False, 'shape': (%d, %d), }" % (n, n)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    rnd = random.Random(path)
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(bytes(rnd.randrange(256) for _ in range(n * n)))
for name in "AB":
    npy(f"{sys.argv[1]}/{name}.npy", 2048)
PY
run "$o" job submit -w consumer --input "a=$HOME/A.npy" --input "b=$HOME/B.npy" --budget 5 --max-price 3 --wait
grep -o 'validator [^ ]* connected ([^)]*)' "$out/devnet.log"
grep -h 'job computed' "$out"/node*.log

if [ "${SKIP_FREIVALDS:-}" != 1 ]; then
  step "Freivalds' check of an int8 product on this GPU"
  run python3 "$here/freivalds.py"
fi
