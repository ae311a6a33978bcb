#!/usr/bin/env python3
"""Multiply two int8 matrices on the network, verified, and check the product locally.

    go run ./cmd/omnisync devnet                      # in another terminal
    python3 sdk/python/examples/matmul.py             # the devnet's funded consumer
    python3 sdk/python/examples/matmul.py --api https://router.example/v1 --wallet ~/.omnisync/wallets/me.json

With NumPy installed the operands are NumPy arrays and the product comes back as one;
without it, the SDK's own matrices do the same with the standard library.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from omnisync import Client, EventPrinter, Int8Matrix, as_int8_matrix, format_omni, matmul, omni  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", default=os.environ.get("OMNISYNC_API", "http://127.0.0.1:7070/v1"))
    p.add_argument("--wallet", default=os.path.expanduser("~/.omnisync/devnet/keys/consumer.json"))
    p.add_argument("--size", type=int, default=128, help="A is size×size/2, B is size/2×size/4")
    p.add_argument("--budget", default="1", help="OMNI locked in escrow (the rest is refunded)")
    p.add_argument("--out", default=".", help="directory for JOB_ID.npy")
    args = p.parse_args()

    rows, inner, cols = args.size, max(args.size // 2, 1), max(args.size // 4, 1)
    rng = random.Random(1)
    try:
        import numpy as np

        a = np.random.default_rng(1).integers(-128, 128, (rows, inner)).astype(np.int8)
        b = np.random.default_rng(2).integers(-128, 128, (inner, cols)).astype(np.int8)
    except ImportError:
        a = Int8Matrix.from_rows([[rng.randint(-128, 127) for _ in range(inner)] for _ in range(rows)])
        b = Int8Matrix.from_rows([[rng.randint(-128, 127) for _ in range(cols)] for _ in range(inner)])

    client = Client(args.api, args.wallet)
    job = client.submit_tensor({"a": a, "b": b}, budget_uomni=omni(args.budget))
    print(f"submitted {job.id}: {rows}×{inner} · {inner}×{cols}, {args.budget} OMNI in escrow")
    job = client.wait(job.id, EventPrinter(sys.stdout), timeout=600)
    if not job.succeeded:
        print(f"job {job.id} ended {job.status}: {job.error or job.verdict}", file=sys.stderr)
        return 1
    result = client.result(job.id, download_to=args.out)
    ok = result.matrix == matmul(as_int8_matrix(a), as_int8_matrix(b))  # result.matrix.to_numpy() with NumPy
    pay = job.payment
    print(f"result   {result.path} ({result.matrix.rows}×{result.matrix.cols} int32), digest {result.digest}")
    print(f"verified {result.verified} by the chain; matches the local product: {ok}")
    if pay:
        print(f"paid     {format_omni(pay.paid_to_node)} OMNI to the node, refunded {format_omni(pay.refunded)} OMNI")
    return 0 if ok and result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
