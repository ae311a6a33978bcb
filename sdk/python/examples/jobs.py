#!/usr/bin/env python3
"""List your jobs, or print one job's logs (following them while it runs).

    python3 sdk/python/examples/jobs.py                          # the newest 20
    python3 sdk/python/examples/jobs.py --status settled --all   # every settled one, page by page
    python3 sdk/python/examples/jobs.py --logs JOB_ID -f         # a container job's stdout and stderr

The list is read with a request signed by the wallet (nobody lists another's jobs); a
chain node's REST API keeps no list, and the jobs are then read from the chain instead.
Logs are the job's consumer's too: the same signed request as its output.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from omnisync import Client, format_omni  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", default=os.environ.get("OMNISYNC_API", "http://127.0.0.1:7070/v1"))
    p.add_argument("--wallet", default=os.path.expanduser("~/.omnisync/devnet/keys/consumer.json"))
    p.add_argument("--status", help="only jobs in this status (queued, running, settled, failed, …)")
    p.add_argument("--limit", type=int, default=20, help="jobs per page (at most 500)")
    p.add_argument("--all", action="store_true", help="every job, following the pages")
    p.add_argument("--chain", action="store_true", help="read the jobs from the chain, not the routers' list")
    p.add_argument("--logs", metavar="JOB_ID", help="print this job's logs instead")
    p.add_argument("--node", help="with --logs: whose log, for a job that ran on several nodes")
    p.add_argument("-f", "--follow", action="store_true", help="with --logs: keep printing until the job ends")
    args = p.parse_args()
    client = Client(args.api, args.wallet)

    if args.logs:
        if args.follow:
            for piece in client.logs(args.logs, node=args.node, follow=True):
                print(piece, end="", flush=True)
        else:
            print(client.logs(args.logs, node=args.node), end="")
        return 0

    if args.all:
        jobs = list(client.iter_jobs(args.status, page_size=args.limit, chain=args.chain))
        more = ""
    else:
        jobs = client.list(args.limit, args.status, chain=args.chain)
        more = jobs.next
    for j in jobs:
        paid = format_omni(j.payment.paid_to_node) + " OMNI paid" if j.payment else ""
        print(f"{j.id}  {j.status:<10} {'verified' if j.verified else '':<8} {j.kind or '?':<9} {paid}")
    if not jobs:
        print("no jobs")
    if more:
        print(f"more: --all, or list(after={more!r})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
