#!/usr/bin/env python3
"""Run a local Python script (here scripts/train_tiny.py, PyTorch) as a container job.

The script and data.csv are mounted read-only under /inputs; what it prints is shown as a
node runs it (the job's logs, followed); whatever it writes under /outputs comes back,
verified by three nodes agreeing, into ./job-output/outputs. (`run_script` does the same
in one call, without the logs.)

    python3 sdk/python/examples/run_script.py --dry-run          # show the job, send nothing
    python3 sdk/python/examples/run_script.py --image pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime

Nodes do not pull images: the image must be on them (or pass --image-archive with a
`docker save` tarball, at most 64 MiB). Swap in a JAX or TensorFlow script and image
the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout

from omnisync import Client, ContainerResult, EventPrinter, JobFailed, omni, script_job, submit_script  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", default=os.environ.get("OMNISYNC_API", "http://127.0.0.1:7070/v1"))
    p.add_argument("--wallet", default=os.path.expanduser("~/.omnisync/devnet/keys/consumer.json"))
    p.add_argument("--image", default="pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime")
    p.add_argument("--image-archive", help="a `docker save` tarball of --image, for nodes without it")
    p.add_argument("--gpus", type=int, default=1)
    p.add_argument("--budget", default="5")
    p.add_argument("--out", default="job-output")
    p.add_argument("--dry-run", action="store_true", help="print the job's spec and hash, send nothing")
    args = p.parse_args()

    script, data = HERE / "scripts" / "train_tiny.py", [HERE / "scripts" / "data.csv"]
    script_args = ["--epochs", "20"]
    if args.dry_run:
        job = script_job(script, image=args.image, data=data, args=script_args)
        spec, _ = Client(args.api).container_job(
            job.image, command=job.command, env=job.env, inputs=job.inputs, gpus=args.gpus, timeout_seconds=3600
        )
        print(json.dumps(spec.to_dict(), indent=2))
        print("spec hash", spec.hash())
        return 0

    extra = {"image_archive": args.image_archive} if args.image_archive else {}
    client = Client(args.api, args.wallet)
    job = submit_script(
        client,
        script,
        image=args.image,
        data=data,
        args=script_args,
        gpus=args.gpus,
        budget_uomni=omni(args.budget),
        **extra,
    )
    print(f"submitted {job.id}; the script's output as a node runs it:")
    for piece in client.logs(job.id, follow=True):  # ends when the job does
        print(piece, end="", flush=True)
    try:
        job = client.wait(job.id, EventPrinter(sys.stdout), check=True)
    except JobFailed as e:
        print(f"job {job.id} ended {e.job.status}: {e.job.error or e.job.verdict}", file=sys.stderr)
        return 1
    result = client.result(job.id, download_to=args.out)  # verified: two replicas agreed
    assert isinstance(result, ContainerResult)
    agreed = ", ".join(r.node[:6] for r in job.agreed)
    print(f"exit code {result.exit_code}; verified {result.verified} (replicas {agreed} agreed); digest {result.digest}")
    for path in result.paths:
        print(" ", path)
    if "metrics.json" in result.as_dict():
        print(result.read("metrics.json").decode())
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
