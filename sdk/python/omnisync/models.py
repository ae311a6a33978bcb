"""What the REST API answers, as typed, read-only records.

Each mirrors an ``api`` Go type (``api/job.go``) field for field, amounts in uomni.
Unknown fields are ignored, so a newer server does not break an older SDK; ``raw`` keeps
the JSON object as received.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from .archive import OutputFile
from .mlp import MLPTrace
from .npy import Float32Matrix, Int8Matrix, Int32Matrix

# Job statuses (api/job.go).
STATUS_AWAITING_INPUTS = "awaiting_inputs"
STATUS_QUEUED = "queued"
STATUS_ASSIGNED = "assigned"
STATUS_RUNNING = "running"
STATUS_COMPUTED = "computed"
STATUS_SETTLED = "settled"
STATUS_FAILED = "failed"
STATUS_CANCELLED = "cancelled"
STATUS_EXPIRED = "expired"
FINAL_STATUSES = frozenset({STATUS_SETTLED, STATUS_FAILED, STATUS_CANCELLED, STATUS_EXPIRED})
#: Every status, in a job's order (``api.Statuses``).
STATUSES = (
    STATUS_AWAITING_INPUTS,
    STATUS_QUEUED,
    STATUS_ASSIGNED,
    STATUS_RUNNING,
    STATUS_COMPUTED,
    STATUS_SETTLED,
    STATUS_FAILED,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
)

# Workload kinds (``api.WorkloadTensor``, ``api.WorkloadContainer``): ``Job.kind``.
KIND_TENSOR = "tensor"
KIND_CONTAINER = "container"

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(text: str) -> Optional[datetime]:
    """Parse Go's RFC 3339 time (nanoseconds are cut to microseconds); None if unreadable."""
    m = _RFC3339.match(text or "")
    if not m:
        return None
    frac = (m.group(2) or "").ljust(6, "0")[:6]
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")
    except ValueError:
        return None


def is_final(status: str) -> bool:
    """Report whether a job status is terminal (``api.Final``)."""
    return status in FINAL_STATUSES


def _u(d: Mapping[str, Any], k: str) -> int:
    v = d.get(k)
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0


def _s(d: Mapping[str, Any], k: str) -> str:
    v = d.get(k)
    return v if isinstance(v, str) else ""


@dataclass(frozen=True)
class Event:
    """One step of a job's progress: ``escrowed``, ``placed``, ``computed``, ``settled``, …"""

    time: Optional[datetime]
    stage: str
    message: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Event":
        return cls(time=parse_time(_s(d, "time")), stage=_s(d, "stage"), message=_s(d, "message"))

    def __str__(self) -> str:
        t = self.time.astimezone().strftime("%H:%M:%S") if self.time else "--:--:--"
        return f"{t}  {self.stage:<10} {self.message}"


@dataclass(frozen=True)
class Scores:
    """Placement score components in basis points (0..10000)."""

    compute: int
    latency: int
    reliability: int
    price: int
    total: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Scores":
        return cls(*(_u(d, k) for k in ("compute", "latency", "reliability", "price", "total")))


@dataclass(frozen=True)
class Payment:
    """How the escrow was divided at settlement, in uomni."""

    budget: int
    cost: int
    paid_to_node: int
    burned: int
    protocol_fee: int
    refunded: int
    billed_millis: int
    network_reward: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Payment":
        names = ("budget", "cost", "paid_to_node", "burned", "protocol_fee", "refunded", "billed_millis", "network_reward")
        return cls(*(_u(d, k) for k in names))


@dataclass(frozen=True)
class Replica:
    """One run of a redundant job: its node, the output digest it revealed, and what it
    was paid once the job settled (in uomni): ``paid`` out of the job's budget, ``reward``
    from the network-rewards pool on top.

    Replicas commit sealed digests: a replica's ``result_digest`` shows only once all three
    have sealed and it has revealed its own, so it is empty while the job runs, and stays
    empty for a replica that failed, never revealed, or came too late. ``paid`` is 0 for a
    replica that was outvoted or not paid.
    """

    node: str
    result_digest: str = ""
    paid: int = 0
    reward: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Replica":
        return cls(node=_s(d, "node"), result_digest=_s(d, "result_digest"), paid=_u(d, "paid"), reward=_u(d, "reward"))

    @property
    def revealed(self) -> bool:
        """Whether the replica's digest is known (it sealed, and every replica did, and it
        revealed)."""
        return self.result_digest != ""


@dataclass(frozen=True)
class Job:
    """A job as GET /v1/jobs/{id} reports it (``api.Job``)."""

    id: str
    consumer: str
    status: str
    node: str = ""
    scores: Optional[Scores] = None
    result_digest: str = ""
    verified: bool = False
    verdict: str = ""
    payment: Optional[Payment] = None
    txs: Dict[str, str] = field(default_factory=dict)
    kind: str = ""
    verification: str = ""
    # audited: the chain drew this challenge or audit job for a full check; an audit job
    # not drawn settles unchecked and is not verified.
    audited: bool = False
    replicas: List[Replica] = field(default_factory=list)
    attempts: int = 0
    error: str = ""
    events: List[Event] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Job":
        txs = d.get("txs")
        return cls(
            id=_s(d, "id"),
            consumer=_s(d, "consumer"),
            status=_s(d, "status"),
            node=_s(d, "node"),
            scores=Scores.from_dict(d["scores"]) if isinstance(d.get("scores"), dict) else None,
            result_digest=_s(d, "result_digest"),
            verified=d.get("verified") is True,
            verdict=_s(d, "verdict"),
            payment=Payment.from_dict(d["payment"]) if isinstance(d.get("payment"), dict) else None,
            txs=dict(txs) if isinstance(txs, dict) else {},
            kind=_s(d, "kind"),
            verification=_s(d, "verification"),
            audited=d.get("audited") is True,
            replicas=[Replica.from_dict(r) for r in d.get("replicas") or [] if isinstance(r, dict)],
            attempts=_u(d, "attempts"),
            error=_s(d, "error"),
            events=[Event.from_dict(e) for e in d.get("events") or [] if isinstance(e, dict)],
            raw=dict(d),
        )

    @property
    def final(self) -> bool:
        """Whether the job has reached a terminal status."""
        return is_final(self.status)

    @property
    def succeeded(self) -> bool:
        """Whether the job settled as its level promises: with its result verified, or, for
        an ``audit`` job the chain did not draw for audit, unchecked (``settled_unaudited``)."""
        return self.status == STATUS_SETTLED and (self.verified or self.settled_unaudited)

    @property
    def settled_unaudited(self) -> bool:
        """Whether this is an ``audit`` job that settled without a check: its result is its
        node's word, and stays so (the level's normal outcome for most jobs)."""
        return self.status == STATUS_SETTLED and not self.verified and self.verification == "audit"

    @property
    def agreed(self) -> List[Replica]:
        """A redundant job's replicas whose revealed digest is the job's settled result."""
        return [r for r in self.replicas if self.result_digest and r.result_digest == self.result_digest]


class JobList(List[Job]):
    """A page of GET /v1/jobs: the jobs (it is a list of :class:`Job`, newest first,
    without their events) and ``next``, the ``after`` of the next page ("" on the last).

    ``from_chain`` is True when the page was read from the chain by the account's
    transaction sequences instead (a REST API that keeps no job list, or ``chain=True``).
    """

    def __init__(self, jobs: Iterable[Job] = (), next: str = "", from_chain: bool = False) -> None:
        super().__init__(jobs)
        self.next = next
        self.from_chain = from_chain

    @property
    def jobs(self) -> List[Job]:
        """The page's jobs as a plain list."""
        return list(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JobList":
        return cls([Job.from_dict(j) for j in d.get("jobs") or [] if isinstance(j, dict)], next=_s(d, "next"))

    def __repr__(self) -> str:
        return f"JobList({list.__repr__(self)}, next={self.next!r}, from_chain={self.from_chain!r})"


@dataclass(frozen=True)
class JobLogs:
    """One read of GET /v1/jobs/{id}/logs (``api.JobLogs``): what ``node`` wrote to stdout
    and stderr while it ran the job, the bytes of its log from position ``start`` (the JSON
    ``from``) to ``next``; read again from ``next`` for more.

    ``nodes`` lists every node that logged (each replica of a redundant job does).
    ``truncated``: the router no longer holds the start asked for (it keeps the last MiB
    of each node's log), so ``start`` is later than asked. ``eof``: the node's log is
    complete. ``final``: the job has ended.
    """

    job_id: str
    node: str
    nodes: List[str]
    start: int
    next: int
    data: bytes = field(repr=False)
    truncated: bool = False
    eof: bool = False
    final: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "JobLogs":
        raw = d.get("data")
        try:
            data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        except (ValueError, binascii.Error) as e:
            raise ValueError(f"logs: data is not base64: {e}") from None
        return cls(
            job_id=_s(d, "job_id"),
            node=_s(d, "node"),
            nodes=[n for n in d.get("nodes") or [] if isinstance(n, str)],
            start=_u(d, "from"),
            next=_u(d, "next"),
            data=data,
            truncated=d.get("truncated") is True,
            eof=d.get("eof") is True,
            final=d.get("final") is True,
        )

    @property
    def done(self) -> bool:
        """Whether following the log can stop: the job has ended and the node's log is
        complete, or this read brought nothing new."""
        return self.final and (self.eof or not self.data)


@dataclass(frozen=True)
class Node:
    """One entry of GET /v1/nodes: a node's chain record joined with live router state."""

    id: str
    gpu_model: str
    gpus: int
    free_gpus: int
    vram_mib: int
    tflops: float
    region: str
    price_per_hour: int
    stake: int
    status: str
    online: bool
    last_heartbeat: Optional[datetime]
    running: List[str]
    jobs_verified: int
    jobs_failed: int
    containers: str = ""
    unsandboxed: bool = False

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Node":
        tf = d.get("tflops")
        return cls(
            id=_s(d, "id"),
            gpu_model=_s(d, "gpu_model"),
            gpus=_u(d, "gpus"),
            free_gpus=_u(d, "free_gpus"),
            vram_mib=_u(d, "vram_mib"),
            tflops=float(tf) if isinstance(tf, (int, float)) else 0.0,
            region=_s(d, "region"),
            price_per_hour=_u(d, "price_per_hour"),
            stake=_u(d, "stake"),
            status=_s(d, "status"),
            online=d.get("online") is True,
            last_heartbeat=parse_time(_s(d, "last_heartbeat")),
            running=[r for r in d.get("running") or [] if isinstance(r, str)],
            jobs_verified=_u(d, "jobs_verified"),
            jobs_failed=_u(d, "jobs_failed"),
            containers=_s(d, "containers"),
            unsandboxed=d.get("unsandboxed") is True,
        )


# Node history entry kinds (``ledger.HistorySettled`` and the others): ``NodeHistoryEntry.kind``.
HISTORY_SETTLED = "settled"
HISTORY_FAILED = "failed"
HISTORY_SLASHED = "slashed"


@dataclass(frozen=True)
class NodeHistoryEntry:
    """One outcome in a node's record (``api.NodeHistoryEntry``): a settled job with what the
    node was ``paid`` from its escrow and its ``reward`` from the network-rewards pool, a
    failure (a redundant replica outvoted, or a result never revealed) with its ``reason``,
    or a slash with the stake it cost (``amount``). Amounts in uomni; ``time_unix`` is the
    block time."""

    height: int
    time_unix: int
    kind: str
    job_id: str = ""
    paid: int = 0
    reward: int = 0
    amount: int = 0
    reason: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NodeHistoryEntry":
        return cls(
            height=_u(d, "height"),
            time_unix=_u(d, "time_unix"),
            kind=_s(d, "kind"),
            job_id=_s(d, "job_id"),
            paid=_u(d, "paid"),
            reward=_u(d, "reward"),
            amount=_u(d, "amount"),
            reason=_s(d, "reason"),
        )


@dataclass(frozen=True)
class NodeRecord:
    """A node's whole history summed (``api.NodeRecord``): jobs settled and failed (slashes
    among the failures), uomni earned (paid plus rewards) and slashed."""

    settled: int
    failed: int
    slashes: int
    earned: int
    slashed: int
    last_unix: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NodeRecord":
        return cls(
            settled=_u(d, "settled"),
            failed=_u(d, "failed"),
            slashes=_u(d, "slashes"),
            earned=_u(d, "earned"),
            slashed=_u(d, "slashed"),
            last_unix=_u(d, "last_unix"),
        )


@dataclass(frozen=True)
class NodeHistory:
    """GET /v1/nodes/{id}/history (``api.NodeHistory``): the node's totals and a page of its
    entries, newest first. ``next_before``, when not 0, is the ``before`` that reads the
    next (older) page."""

    node: str
    record: NodeRecord
    entries: List[NodeHistoryEntry]
    next_before: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "NodeHistory":
        rec = d.get("record")
        return cls(
            node=_s(d, "node"),
            record=NodeRecord.from_dict(rec if isinstance(rec, dict) else {}),
            entries=[NodeHistoryEntry.from_dict(e) for e in d.get("entries") or [] if isinstance(e, dict)],
            next_before=_u(d, "next_before"),
        )


@dataclass(frozen=True)
class Account:
    """GET /v1/accounts/{address}: balance in uomni and the next transaction sequence."""

    address: str
    balance: int
    seq: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Account":
        return cls(address=_s(d, "address"), balance=_u(d, "balance"), seq=_u(d, "seq"))


@dataclass(frozen=True)
class TxReceipt:
    """A committed transaction: who sent it, its hash and the block that committed it."""

    sender: str
    hash: str
    height: int


@dataclass(frozen=True)
class JobOutput:
    """GET /v1/jobs/{id}/output: the bytes a node returned, checked against ``digest``.

    Until ``verified`` (the chain settled the job), nothing vouches for them but the node.
    """

    job_id: str
    digest: str
    verified: bool
    status: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class TensorResult:
    """A tensor job's output, and where it was saved as ``.npy``.

    ``matrix`` is what ``omnisync job result`` saves: A·B as an :class:`Int32Matrix`
    (matmul-int8) or a :class:`Float32Matrix` (matmul-fp32), or an mlp-int8 job's output
    rows as an :class:`Int8Matrix`. ``kernel`` says which (read from the output's
    encoding); for mlp-int8, ``trace`` holds every layer's accumulators, which the
    validators checked, and a zk job's ``proof`` the proof the chain's committee verified.
    """

    job_id: str
    digest: str
    verified: bool
    status: str
    matrix: Union[Int32Matrix, Float32Matrix, Int8Matrix]
    path: Optional[Path] = None
    kernel: str = "matmul-int8"
    trace: Optional[MLPTrace] = field(default=None, repr=False)
    proof: Optional[bytes] = field(default=None, repr=False)


@dataclass(frozen=True)
class ContainerResult:
    """A container job's output: exit code and files, and where they were unpacked.

    With ``download_to=DIR`` the files are at ``DIR/outputs/<path>`` and the exit code in
    ``DIR/exit_code`` (the layout ``omnisync`` and ``api.WriteOutput`` use).
    """

    job_id: str
    digest: str
    verified: bool
    status: str
    exit_code: int
    files: List[OutputFile] = field(repr=False)
    directory: Optional[Path] = None

    def as_dict(self) -> Dict[str, bytes]:
        """The files as {path relative to /outputs: bytes}."""
        return {f.path: f.data for f in self.files}

    def read(self, path: str) -> bytes:
        """The bytes of one output file (path relative to ``/outputs``)."""
        for f in self.files:
            if f.path == path:
                return f.data
        raise KeyError(path)

    @property
    def paths(self) -> List[Path]:
        """Where each output file was written (empty unless downloaded to a directory)."""
        if self.directory is None:
            return []
        return [self.directory.joinpath("outputs", *f.path.split("/")) for f in self.files]
