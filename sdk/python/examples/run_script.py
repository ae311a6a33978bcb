#!/usr/bin/env python3
"""Run a local Python script (here scripts/train_tiny.py, PyTorch) as a container job.

The script and data.csv are mounted read-only under /inputs; whatever the script writes
under /outputs comes back, verified by three nodes agreeing, into ./job-output/outputs.

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

from omnisync import Client, EventPrinter, omni, run_script, script_job  # noqa: E402


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
    result = run_script(
        Client(args.api, args.wallet),
        script,
        image=args.image,
        data=data,
        args=script_args,
        gpus=args.gpus,
        budget_uomni=omni(args.budget),
        download_to=args.out,
        on_update=EventPrinter(sys.stdout),
        **extra,
    )
    print(f"exit code {result.exit_code}; verified {result.verified}; digest {result.digest}")
    for path in result.paths:
        print(" ", path)
    if "metrics.json" in result.as_dict():
        print(result.read("metrics.json").decode())
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
