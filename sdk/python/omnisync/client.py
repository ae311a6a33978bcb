"""The REST client: submit jobs, follow them, fetch their verified output.

:class:`Client` speaks the API the Go client (``api/client.go``) and the ``omnisync`` CLI
speak, with the same signing: a job is submitted with the consumer's signed
``create_job`` transaction, which escrows its budget and commits to the spec's hash, and
its output and logs, and the consumer's list of jobs, are read with short-lived signed
requests only the consumer can make.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlencode

from . import _gojson
from ._http import STREAM_IDLE_TIMEOUT, StreamBroken, Transport, path_escape, read_events
from .archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, unpack_output, write_output
from .errors import (
    Conflict,
    DigestMismatch,
    EncodingError,
    InputUploadError,
    JobFailed,
    NotFound,
    NotSupportedByServer,
    OmniSyncError,
    SpecError,
    TransportError,
    Unavailable,
    UnverifiedResult,
    WaitTimeout,
)
from .keys import SigningKey
from .models import (
    Account,
    ContainerResult,
    Event,
    Job,
    JobList,
    JobLogs,
    JobOutput,
    Node,
    NodeHistory,
    TensorResult,
    TxReceipt,
    is_final,
)
from .mlp import TRACE_MAGIC, ZK_RESULT_MAGIC, ModelLike, MLPTrace, as_mlp, zk_output
from .npy import (
    DTYPE_FLOAT32,
    DTYPE_INT32,
    MAX_INNER,
    OMT_MAGIC,
    Float32Matrix,
    Int32Matrix,
    MatrixLike,
    _check_matmul_float32,
    as_float32_matrix,
    as_int8_matrix,
)
from .signing import MAX_OUTPUT_AUTH_TTL, sign_cancel_job, sign_create_job, sign_job_list_auth, sign_output_auth
from .signing import job_id as derive_job_id
from .spec import (
    KERNEL_MATMUL_FP32,
    KERNEL_MATMUL_INT8,
    KERNEL_MLP_INT8,
    KERNELS,
    MAX_INPUT_BYTES,
    UOMNI_PER_OMNI,
    VERIFY_FREIVALDS,
    Input,
    JobSpec,
    Placement,
    container_spec,
    digest_of,
    tensor_spec,
    valid_input_name,
)

PathLike = Union[str, "os.PathLike[str]"]
#: An input's content: its bytes, or the path of a file holding them (streamed when large).
InputData = Union[bytes, bytearray, memoryview, str, "os.PathLike[str]"]

#: Inputs up to this many bytes in all travel inline in the body of POST /v1/jobs
#: (multipart/form-data, 16 MiB at most by default); the rest are streamed with
#: PUT /v1/jobs/{id}/inputs/{name} once the escrow has committed.
DEFAULT_INLINE_LIMIT = 8 << 20

def submit_multipart(request_json: bytes, inputs: Sequence[Tuple[str, bytes]]) -> Tuple[bytes, str]:
    """A POST /v1/jobs body as multipart/form-data (the Go API's ``EncodeSubmitMultipart``):
    a part named ``request``, the request's JSON without ``input_data``, then one part
    ``input:NAME`` per inline input, its bytes as they are, a quarter smaller than base64.
    Returns the body and its Content-Type."""
    while True:
        boundary = "omnisync-" + os.urandom(16).hex()
        b = boundary.encode()
        if b not in request_json and all(b not in data for _, data in inputs):
            break
    out = []
    for name, ctype, data in [("request", "application/json", request_json)] + [("input:" + n, "application/octet-stream", d) for n, d in inputs]:
        out.append(b"--" + b + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\nContent-Type: " + ctype.encode() + b"\r\n\r\n")
        out.append(data)
        out.append(b"\r\n")
    out.append(b"--" + b + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary


#: How many transactions of one account may wait in the mempool for their block
#: (``ledger.MaxPending``): an ``async_`` submission may be signed up to this many
#: sequences past the account's committed one.
MAX_PENDING = 64
#: How often an ``async_`` submission looks again for a block: one that makes room among
#: the account's pending sequences, or that commits a job's escrow before its uploads.
ASYNC_POLL_INTERVAL = 0.25

#: The most jobs one page of GET /v1/jobs holds (``api.MaxJobListLimit``).
MAX_JOB_LIST_LIMIT = 500
#: The most entries one page of GET /v1/nodes/{id}/history holds (``ledger.MaxHistoryLimit``).
MAX_NODE_HISTORY_LIMIT = 200
#: How often following a job's logs asks for more, in seconds (as ``omnisync job logs -f``).
LOG_POLL_INTERVAL = 0.5

# How far a job list read from the chain looks back through the account's transactions.
_LIST_SCAN = 1000
_HEADER_DIGEST = "omni-digest"
_HEADER_VERIFIED = "omni-verified"
_HEADER_STATUS = "omni-job-status"


@dataclass(frozen=True)
class _Blob:
    """An input ready to send: its bytes in memory, or a file to stream."""

    name: str
    size: int
    digest: str
    data: Optional[bytes] = None
    path: Optional[Path] = None

    def input(self) -> Input:
        return Input(name=self.name, digest=self.digest, size=self.size)

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()  # type: ignore[union-attr]


def _blob(name: str, value: InputData) -> _Blob:
    """Size and digest an input, reading a file once (and holding it only if small)."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        return _Blob(name, len(b), digest_of(b), data=b)
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        h, size = hashlib.sha256(), 0
        try:
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                    size += len(chunk)
        except OSError as e:
            raise SpecError(f'input_data["{name}"]', f"{p}: {e.strerror or e}") from e
        return _Blob(name, size, "sha256:" + h.hexdigest(), path=p)
    raise TypeError(f"input {name!r}: give bytes or a file path, not {type(value).__name__}")


def _named_inputs(inputs: Union[None, Mapping[str, InputData], Sequence[PathLike]]) -> Dict[str, InputData]:
    """Inputs as {name: content}; a list of paths is named by each file's base name."""
    if inputs is None:
        return {}
    if isinstance(inputs, Mapping):
        return dict(inputs)
    if isinstance(inputs, (str, bytes, os.PathLike)):
        raise TypeError("inputs must be a mapping {name: bytes or path} or a list of paths")
    out: Dict[str, InputData] = {}
    for p in inputs:
        name = Path(p).name
        if name in out:
            raise SpecError("inputs", f'two files are named "{name}": give them as a mapping with distinct names')
        out[name] = p
    return out


def _tensor_inputs(kernel: str, pairs: Sequence[Tuple[str, Any]]) -> List[Tuple[str, bytes]]:
    """A tensor job's inputs checked as the router's intake decodes them
    (``checkKernelInputs``) and encoded as the kernel takes them."""
    if kernel not in KERNELS:
        raise SpecError("workload.kernel", f"unknown kernel {kernel!r} (known: {', '.join(KERNELS)}); submit(spec, data) sends any spec")
    want = {KERNEL_MLP_INT8: "[model, x]"}.get(kernel, "[a, b]")
    if len(pairs) != 2:
        raise SpecError("inputs", f"{kernel} takes 2 inputs {want}, got {len(pairs)}")
    (na, va), (nb, vb) = pairs
    # An operand that is not what the kernel takes raises EncodingError (naming it); the
    # kernel's checks across operands raise SpecError on "inputs", as the router would.
    if kernel == KERNEL_MATMUL_FP32:
        fa, fb = _operand(na, as_float32_matrix, va), _operand(nb, as_float32_matrix, vb)
        _kernel_check(_check_matmul_float32, fa, fb)
        return [(na, fa.to_omt()), (nb, fb.to_omt())]
    if kernel == KERNEL_MLP_INT8:
        model, x = _operand(na, as_mlp, va), _operand(nb, as_int8_matrix, vb)
        _kernel_check(model.check_batch, x)
        return [(na, model.to_omzm()), (nb, x.to_omt())]
    a, b = _operand(na, as_int8_matrix, va), _operand(nb, as_int8_matrix, vb)
    _kernel_check(_check_matmul_int8, a, b)
    return [(na, a.to_omt()), (nb, b.to_omt())]


def _check_matmul_int8(a: Any, b: Any) -> None:
    if a.cols != b.rows:
        raise EncodingError(f"cannot multiply {a.rows}x{a.cols} by {b.rows}x{b.cols}")
    if a.cols > MAX_INNER:
        raise EncodingError(f"inner dimension {a.cols} exceeds {MAX_INNER} (int32 accumulation could overflow)")


def _kernel_check(check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except EncodingError as e:
        raise SpecError("inputs", str(e)) from None


def _operand(name: str, convert: Callable[[Any], Any], value: Any) -> Any:
    try:
        return convert(value)
    except EncodingError as e:
        raise EncodingError(f"input {name}: {e}") from None


class Client:
    """A consumer's client for one OmniSync REST API (a router, or any chain node for reads).

    ``url`` is the API's base URL as the daemons print it (``http://127.0.0.1:7070/v1``,
    with or without ``/v1``), or several, comma-separated or as a list, such as the routers
    of one cluster: a request one of them does not serve (no answer, or 502, 503 or 504)
    goes on to the next, each once, starting at the last that answered. Only reads and
    the signed POSTs of jobs and transactions are sent again, never a streamed upload; when
    no URL serves a request, :class:`~omnisync.errors.FailoverError` names what each did.
    ``key_file`` is the consumer's wallet, a Solana CLI keypair file; ``key`` may be given
    instead. Reading a job needs no key; submitting, cancelling, listing jobs and reading
    outputs and logs do.

    Each call opens its own connection, so one client may serve several threads; but
    transactions from one key must go one at a time (each takes the account's next
    sequence number). ``async_`` submissions are the exception: the client counts their
    sequences itself and sends them one at a time, so threads may share it for those.
    """

    def __init__(
        self,
        url: Union[str, Sequence[str]],
        key_file: Optional[PathLike] = None,
        *,
        key: Optional[SigningKey] = None,
        timeout: float = 30.0,
        chain_id: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        inline_limit: int = DEFAULT_INLINE_LIMIT,
    ) -> None:
        if key is not None and key_file is not None:
            raise ValueError("give key_file or key, not both")
        self._key = SigningKey.from_key_file(key_file) if key_file is not None else key
        self._t = Transport(url, timeout=timeout, ssl_context=ssl_context)
        self._chain_id = chain_id
        self.inline_limit = inline_limit
        # The sequence the next async_ submission signs, once known: one past the last
        # this client had admitted. The lock keeps them in order, as the mempool wants.
        self._next_seq: Optional[int] = None
        self._seq_lock = threading.Lock()

    def __repr__(self) -> str:
        who = f", address={self._key.address!r}" if self._key else ""
        return f"Client({self.url!r}{who})"

    @property
    def url(self) -> str:
        """The API's base URL, without ``/v1``: the first of several."""
        return self._t.url

    @property
    def urls(self) -> Tuple[str, ...]:
        """Every URL the client sends to, in the order given, without ``/v1``."""
        return self._t.urls

    @property
    def key(self) -> Optional[SigningKey]:
        """The consumer's key, if the client has one."""
        return self._key

    @property
    def address(self) -> str:
        """The consumer's account address."""
        return self._require_key().address

    def _require_key(self) -> SigningKey:
        if self._key is None:
            raise OmniSyncError("this client has no key: create it with Client(url, key_file) to sign")
        return self._key

    # Reads.

    def health(self) -> Dict[str, str]:
        """GET /v1/health: ``{"status": "ok", "chain_id": …}`` and what the daemon shows."""
        return dict(self._t.call("GET", "/v1/health"))

    def chain_id(self) -> str:
        """The chain the API serves (from /v1/health, asked once), which transactions name."""
        if self._chain_id is None:
            cid = self.health().get("chain_id", "")
            if not cid:
                raise OmniSyncError(f"the API at {self.url} does not say which chain it serves (no chain_id in /v1/health)")
            self._chain_id = cid
        return self._chain_id

    def account(self, address: Optional[str] = None) -> Account:
        """GET /v1/accounts/{address} (the client's own by default)."""
        addr = address or self.address
        return Account.from_dict(self._t.call("GET", "/v1/accounts/" + path_escape(addr)))

    def nodes(self) -> List[Node]:
        """GET /v1/nodes: every registered node with its live state."""
        return [Node.from_dict(n) for n in self._t.call("GET", "/v1/nodes") or []]

    def node_history(self, node_id: str, before: Optional[int] = None, limit: Optional[int] = None) -> NodeHistory:
        """GET /v1/nodes/{id}/history: a node's earnings and slashes. Returns its totals
        (``record``) and a page of its settled jobs, failures and slashes, newest first:
        those below block height ``before`` (default the newest), at most ``limit`` of them
        (1 to 200; default the server's, 50). A page with more below it has
        ``next_before`` set: pass it as ``before`` to read on."""
        query: Dict[str, str] = {}
        if before is not None:
            if before < 1:
                raise ValueError(f"before {before}: want a block height, 1 or more")
            query["before"] = str(before)
        if limit is not None:
            if not 1 <= limit <= MAX_NODE_HISTORY_LIMIT:
                raise ValueError(f"limit {limit}: want 1 to {MAX_NODE_HISTORY_LIMIT}")
            query["limit"] = str(limit)
        path = "/v1/nodes/" + path_escape(node_id) + "/history"
        if query:
            path += "?" + urlencode(query)
        return NodeHistory.from_dict(self._t.call("GET", path))

    def get(self, job_id: str) -> Job:
        """GET /v1/jobs/{id}: the job's status, node, verdict, payment and events."""
        return Job.from_dict(self._t.call("GET", _job_path(job_id)))

    # Submission.

    def submit(
        self,
        spec: JobSpec,
        data: Mapping[str, InputData],
        *,
        async_: bool = False,
        sequence: Optional[int] = None,
    ) -> Job:
        """Submit spec with its inputs' content (bytes or file paths, by input name).

        Signs the ``create_job`` transaction that escrows ``spec.budget``, posts it with the
        inputs that fit inline, and uploads the others once the escrow has committed.
        Nothing is escrowed unless the router accepts the job.

        The router answers once the escrow's block has committed. With ``async_=True`` it
        answers once the chain's mempool has admitted the escrow, a block sooner: the job
        reads ``queued`` until the escrow commits, and ``failed`` (nothing escrowed) if its
        block refuses it. Each such submission is signed with the next sequence: ``sequence``
        if given, else one past this client's last ``async_`` submission, else the first
        sequence past the account's committed one that no job waiting for its block holds.
        So a loop of ``async_`` submissions puts many jobs in one block; once
        :data:`MAX_PENDING` (64) wait for their block, the next waits for a block to make
        room. A sequence taken already (by another client of this key, say) raises
        :class:`~omnisync.errors.Conflict`. Inputs that do not travel inline are uploaded
        once the escrow has committed, so such a submission waits for its block.
        """
        spec.validate()
        declared = {i.name for i in spec.inputs}
        for name in data:
            if name not in declared:
                raise SpecError(f'input_data["{name}"]', "not declared in spec.inputs")
        blobs = []
        for i, inp in enumerate(spec.inputs):
            if inp.name not in data:
                raise SpecError(f"inputs[{i}]", f'no content given for input "{inp.name}"')
            b = _blob(inp.name, data[inp.name])
            if b.size != inp.size or b.digest != inp.digest:
                raise SpecError(f'input_data["{inp.name}"]', f"{b.size} bytes {b.digest}, spec declares {inp.size} bytes {inp.digest}")
            blobs.append(b)
        return self._submit(spec, blobs, async_, sequence)

    def _submit(self, spec: JobSpec, blobs: Sequence[_Blob], async_: bool = False, sequence: Optional[int] = None) -> Job:
        key = self._require_key()
        inline: Dict[str, bytes] = {}
        uploads: List[_Blob] = []
        room = self.inline_limit
        for b in blobs:
            if b.size <= room:
                inline[b.name] = b.read()
                room -= b.size
            else:
                uploads.append(b)
        if sequence is not None and not async_:
            raise ValueError("sequence is for async_ submissions: a synchronous one is signed with the account's committed sequence")
        if async_:
            with self._seq_lock:
                seq = self._async_sequence(key.address, sequence)
                try:
                    job = self._post_job(key, seq, spec, inline, True)
                except Conflict as e:
                    self._next_seq = None  # learn the sequence afresh next time
                    raise Conflict(
                        e.status,
                        f"{e.message} (sequence {seq} is taken, or past the account's window: another "
                        f"transaction of this key holds it; pass a free sequence=, or submit again once "
                        f"the pending jobs' block has committed)",
                        code=e.code, field=e.field, method=e.method, path=e.path,
                    ) from e
                except OmniSyncError:
                    self._next_seq = None
                    raise
                self._next_seq = seq + 1
        else:
            job = self._post_job(key, self.account(key.address).seq, spec, inline, False)
        if uploads and async_:
            self._await_escrow(job.id)
        for b in uploads:
            try:
                self.upload_input(job.id, b.name, b.path if b.path is not None else b.data)  # type: ignore[arg-type]
            except OmniSyncError as e:
                raise InputUploadError(job.id, b.name, e) from e
        return self.get(job.id) if uploads else job

    def _async_sequence(self, address: str, sequence: Optional[int]) -> int:
        """The sequence an async_ submission signs (see :meth:`submit`), once the account's
        window of pending sequences has room for it."""
        committed = self.account(address).seq
        if sequence is not None:
            seq = sequence
        elif self._next_seq is not None and self._next_seq >= committed:
            seq = self._next_seq
        else:
            seq = next((s for s in range(committed, committed + MAX_PENDING) if not self._job_known(derive_job_id(address, s))), committed + MAX_PENDING)
        deadline = time.monotonic() + self._t.timeout
        while seq >= committed + MAX_PENDING:
            if time.monotonic() >= deadline:
                raise OmniSyncError(
                    f"sequence {seq}: {seq - committed} jobs of {address} are still waiting for their block "
                    f"(at most {MAX_PENDING} may); submit again once a block has committed them"
                )
            time.sleep(ASYNC_POLL_INTERVAL)
            committed = self.account(address).seq
        return seq

    def _job_known(self, job_id: str) -> bool:
        """Whether a job holds job_id's sequence: one the API knows, unless it failed
        before its escrow committed (its block refused it, so the sequence is unused and
        the router takes a job signed with it again)."""
        try:
            job = self.get(job_id)
        except NotFound:
            return False
        return not (job.status == "failed" and not _escrow_committed(job))

    def _await_escrow(self, job_id: str) -> None:
        """Wait until an async_ job's escrow has committed (the router records its
        ``escrowed`` event), which its uploads need; raise :class:`JobFailed` if its block
        refused it."""
        deadline = time.monotonic() + max(self._t.timeout, 60.0)
        while True:
            job = self.get(job_id)
            if _escrow_committed(job):
                return
            if is_final(job.status):
                raise JobFailed(job)
            if time.monotonic() >= deadline:
                raise WaitTimeout(job_id, max(self._t.timeout, 60.0), job)
            time.sleep(ASYNC_POLL_INTERVAL)

    def _post_job(self, key: SigningKey, seq: int, spec: JobSpec, inline: Mapping[str, bytes], async_: bool) -> Job:
        """POST /v1/jobs: the job signed with seq, and its inline inputs."""
        tx = sign_create_job(key, self.chain_id(), seq, spec)
        body: Dict[str, Any] = {"spec": spec.to_dict(), "tx": tx}
        if async_:
            body["async"] = True
        if inline:
            payload, content_type = submit_multipart(_gojson.dumps(body), [(i.name, inline[i.name]) for i in spec.inputs if i.name in inline])
            r = self._t.request("POST", "/v1/jobs", body=payload, headers={"Content-Type": content_type, "Accept": "application/json"})
            try:
                return Job.from_dict(r.json())
            except ValueError as e:
                raise TransportError(f"POST /v1/jobs: the answer is not JSON: {e}") from None
        return Job.from_dict(self._t.call("POST", "/v1/jobs", _gojson.dumps(body)))

    def upload_input(self, job_id: str, name: str, data: InputData) -> None:
        """PUT /v1/jobs/{id}/inputs/{name}: stream one declared input of an escrowed job
        (bytes, or a file path, streamed from disk). The server checks size and digest."""
        path = f"{_job_path(job_id)}/inputs/{path_escape(name)}"
        headers = {"Content-Type": "application/octet-stream", "Accept": "application/json"}
        if isinstance(data, (bytes, bytearray, memoryview)):
            self._t.request("PUT", path, body=bytes(data), headers=headers)
            return
        p = Path(data)
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # A body streamed from disk may take far longer than one request's timeout.
            self._t.request("PUT", path, body=f, content_length=size, headers=headers, timeout=max(self._t.timeout, 300.0))

    def submit_tensor(
        self,
        inputs: Union[Mapping[str, Any], Sequence[Tuple[str, Any]]],
        *,
        kernel: str = KERNEL_MATMUL_INT8,
        budget_uomni: int = UOMNI_PER_OMNI,
        max_price_per_hour_uomni: int = 3 * UOMNI_PER_OMNI,
        timeout_seconds: int = 300,
        verification: str = VERIFY_FREIVALDS,
        gpus: int = 1,
        vram_mib: int = 0,
        placement: Optional[Placement] = None,
        async_: bool = False,
        sequence: Optional[int] = None,
    ) -> Job:
        """Submit a tensor job: the kernel's inputs by name, in its order.

        * ``matmul-int8``: ``a``, ``b``, int8 matrices (a ``.npy`` path or its bytes, a
          NumPy integer array, rows of ints, an :class:`~omnisync.Int8Matrix`); A·B in int32.
        * ``matmul-fp32``: ``a``, ``b``, float32 matrices (a ``'<f4'`` ``.npy`` path or its
          bytes, a NumPy float32 array, rows of numbers, a :class:`~omnisync.Float32Matrix`;
          finite, no subnormals); A·B in float32, checked within a rounding bound, so at
          ``freivalds`` or ``audit`` only.
        * ``mlp-int8``: ``model`` (an :class:`~omnisync.MLP`, the CLI's ``.npz`` path or
          bytes, or ``[(weights, biases, shift), …]``), then ``x``, an int8 batch, one input
          per row; the model's output rows, at ``freivalds`` or ``audit`` (see :meth:`submit_mlp`).

        Inputs are checked as the router will check them, then encoded as the kernel takes
        them (OMT1 matrices, the OMZM model). Defaults are the CLI's: 1 OMNI budget, at
        most 3 OMNI per GPU-hour, 5 minutes, Freivalds' check. ``async_`` and ``sequence``
        are :meth:`submit`'s.
        """
        pairs = list(inputs.items()) if isinstance(inputs, Mapping) else list(inputs)
        blobs = [_blob(name, data) for name, data in _tensor_inputs(kernel, pairs)]
        spec = tensor_spec(
            [b.input() for b in blobs],
            kernel=kernel,
            gpus=gpus,
            vram_mib=vram_mib,
            budget=budget_uomni,
            max_price_per_hour=max_price_per_hour_uomni,
            timeout_seconds=timeout_seconds,
            verification=verification,
            placement=placement,
        )
        return self._submit(spec, blobs, async_, sequence)

    def submit_mlp(self, model: ModelLike, x: MatrixLike, *, verification: str = VERIFY_FREIVALDS, **kw: Any) -> Job:
        """Submit an mlp-int8 job: ``model`` run on each row of ``x``, an int8 batch.

        The same as ``submit_tensor({"model": model, "x": x}, kernel="mlp-int8", …)``, the
        inputs named as ``omnisync job submit --model`` names them. ``verification`` is
        ``freivalds`` (every job's trace checked layer by layer) or ``audit`` (a share of
        jobs); the zk level is built by the Go CLI only. Its result's ``matrix`` is the
        int8 output rows (:meth:`result`).
        """
        return self.submit_tensor([("model", model), ("x", x)], kernel=KERNEL_MLP_INT8, verification=verification, **kw)

    def container_job(
        self,
        image: str,
        *,
        command: Sequence[str] = (),
        env: Union[None, Mapping[str, str], Sequence[str]] = None,
        inputs: Union[None, Mapping[str, InputData], Sequence[PathLike]] = None,
        image_id: str = "",
        image_archive: Optional[InputData] = None,
        image_archive_name: str = "image.tar",
        gpus: int = 0,
        vram_mib: int = 0,
        cpu_milli: int = 0,
        memory_mib: int = 0,
        budget_uomni: int = UOMNI_PER_OMNI,
        max_price_per_hour_uomni: int = 3 * UOMNI_PER_OMNI,
        timeout_seconds: int = 600,
        placement: Optional[Placement] = None,
        verification: str = "redundant",
    ) -> Tuple[JobSpec, Dict[str, InputData]]:
        """Build (without sending) a container job's spec and its inputs' content; see
        :meth:`submit_container`. Needs no server: it is what that method signs."""
        data = _named_inputs(inputs)
        archive = ""
        if image_archive is not None:
            if image_archive_name in data:
                raise SpecError("workload.image_archive", f'"{image_archive_name}" is also the name of an input')
            data[image_archive_name] = image_archive
            archive = image_archive_name
        blobs = []
        for name, value in data.items():
            if not valid_input_name(name):
                raise SpecError(f'inputs["{name}"]', "must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'")
            b = _blob(name, value)
            if b.size > MAX_INPUT_BYTES:
                raise SpecError(f'inputs["{name}"]', f"{b.size} bytes is more than an input may hold ({MAX_INPUT_BYTES})")
            blobs.append(b)
        spec = container_spec(
            image,
            inputs=[b.input() for b in blobs],
            command=command,
            env=env if not isinstance(env, Mapping) else dict(env),
            image_id=image_id,
            image_archive=archive,
            gpus=gpus,
            vram_mib=vram_mib,
            cpu_milli=cpu_milli,
            memory_mib=memory_mib,
            budget=budget_uomni,
            max_price_per_hour=max_price_per_hour_uomni,
            timeout_seconds=timeout_seconds,
            placement=placement,
            verification=verification,
        )
        return spec, {b.name: (b.data if b.data is not None else b.path) for b in blobs}  # type: ignore[misc]

    def submit_container(self, image: str, *, async_: bool = False, sequence: Optional[int] = None, **kwargs: Any) -> Job:
        """Submit a container job: ``image`` runs ``command`` (its own entrypoint when empty)
        with ``env``, its ``inputs`` mounted read-only as ``/inputs/<name>``, no network,
        and everything it writes to ``/outputs`` returned as its output.

        Keyword arguments: ``command`` (list), ``env`` (dict or ``["K=V"]``), ``inputs``
        (``{name: bytes or path}`` or a list of paths, named by base name), ``image_id``
        (``sha256:…``, pins the image), ``image_archive`` (a ``docker save`` tarball, bytes
        or path, sent as input ``image_archive_name``), ``gpus`` (default 0),
        ``vram_mib``, ``cpu_milli``, ``memory_mib``, ``budget_uomni``,
        ``max_price_per_hour_uomni``, ``timeout_seconds`` (default 600), ``placement``,
        ``verification``: ``redundant`` (the default: three nodes of distinct operators run
        it and two matching outputs are paid) or ``audit`` (one node runs it; the chain draws
        a share of jobs for a validator to run again, and the rest settle unchecked).
        ``async_`` and ``sequence`` are :meth:`submit`'s.
        """
        spec, data = self.container_job(image, **kwargs)
        return self.submit(spec, data, async_=async_, sequence=sequence)

    # Following.

    def wait(
        self,
        job_id: str,
        on_update: Optional[Callable[[Job], None]] = None,
        *,
        timeout: Optional[float] = None,
        poll_interval: float = 1.0,
        check: bool = False,
    ) -> Job:
        """Follow a job until it reaches a final status, and return it.

        ``on_update`` is called once for each distinct state, in order (see
        :class:`EventPrinter` for a ready-made one). The job's event stream is followed;
        if it breaks, a client of several URLs follows it again from the next, as many
        times as it has URLs; after that, or when no stream opens, the job is polled every
        ``poll_interval`` seconds, riding out network errors and 503s. ``timeout``
        (seconds) bounds the wait with :class:`WaitTimeout` (the job goes on). With
        ``check=True``, a job that did not settle verified raises :class:`JobFailed`.
        """
        job = None
        for job in self._snapshots(job_id, timeout, poll_interval):
            if on_update is not None:
                on_update(job)
        assert job is not None
        if check and not job.succeeded:
            raise JobFailed(job)
        return job

    def events(self, job_id: str, *, follow: bool = False, timeout: Optional[float] = None) -> Iterator[Event]:
        """Yield the job's progress events (escrowed, placed, computed, settled, …).

        Without ``follow``, those so far; with it, each new one as it happens, until the
        job reaches a final status (or ``timeout`` seconds pass: :class:`WaitTimeout`).
        """
        if not follow:
            yield from self.get(job_id).events
            return
        seen = 0
        for job in self._snapshots(job_id, timeout, 1.0):
            yield from job.events[seen:]
            seen = max(seen, len(job.events))

    def _snapshots(self, job_id: str, timeout: Optional[float], poll_interval: float) -> Iterator[Job]:
        """Yield each distinct state of the job until a final one: from its event stream,
        followed again from the next URL each time it breaks (once per URL), then by
        polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Dict[str, Any] = {"raw": None, "job": None}

        def fresh(raw: Dict[str, Any]) -> Optional[Job]:
            if raw == last["raw"]:
                return None
            last["raw"], last["job"] = raw, Job.from_dict(raw)
            return last["job"]

        def timed_out() -> WaitTimeout:
            return WaitTimeout(job_id, timeout or 0.0, last["job"])

        path = _job_path(job_id)
        for _ in self._t.urls:
            try:
                first = STREAM_IDLE_TIMEOUT if deadline is None else max(0.1, min(STREAM_IDLE_TIMEOUT, deadline - time.monotonic()))
                conn, resp, broke = self._t.open_stream(path + "/events", headers={"Accept": "text/event-stream"}, timeout=first)
            except (TransportError, Unavailable, NotSupportedByServer):
                break  # no stream opened at any URL: poll instead; an unknown job and the like are raised
            try:
                for name, data in read_events(conn, resp, deadline):
                    if name == "error":
                        break  # the server gave up on the stream; polling reports a lasting error
                    if name != "job":
                        continue
                    try:
                        raw = json.loads(data)
                    except ValueError:
                        break
                    job = fresh(raw)
                    if job is not None:
                        yield job
                    if is_final(raw.get("status", "")):
                        return
            except StreamBroken:
                pass
            except socket.timeout:
                raise timed_out() from None
            finally:
                conn.close()
            broke()
        while True:
            try:
                raw = self._t.call("GET", path)
            except (TransportError, Unavailable):
                raw = None
            if raw is not None:
                job = fresh(raw)
                if job is not None:
                    yield job
                if is_final(raw.get("status", "")):
                    return
            pause = poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise timed_out()
                pause = min(pause, left)
            time.sleep(pause)

    def log_reads(
        self,
        job_id: str,
        *,
        node: Optional[str] = None,
        since: int = 0,
        follow: bool = False,
        poll_interval: float = LOG_POLL_INTERVAL,
        timeout: Optional[float] = None,
        ttl: float = 60,
    ) -> Iterator[JobLogs]:
        """Yield reads of GET /v1/jobs/{id}/logs as :class:`JobLogs` (bytes, positions and
        flags); :meth:`logs` is the convenient form.

        Each request is signed as an output request is (only the job's consumer reads its
        logs). Without ``follow``, one read from position ``since``. With it, reads from
        each read's ``next`` every ``poll_interval`` seconds until the job has ended and the
        node's log is complete (or a read brings nothing more), riding out network errors
        and 503s once the first read succeeded; ``timeout`` bounds it with
        :class:`WaitTimeout`. The first read picks the node when ``node`` is None (the job's
        node, or its first replica with logs); later reads stay with it.
        """
        if since < 0:
            raise ValueError(f"since {since}: want a position in the log, 0 or more")
        key = self._require_key()
        deadline = None if timeout is None else time.monotonic() + timeout
        base = _job_path(job_id) + "/logs"
        pos, who, read_once = since, node or "", False
        while True:
            query = [("from", str(pos))]
            if who:
                query.append(("node", who))
            try:
                chunk: Optional[JobLogs] = self._read_logs(key, job_id, base + "?" + urlencode(query), ttl)
            except (TransportError, Unavailable):
                if not (follow and read_once):
                    raise
                chunk = None  # a passing failure while following: try again
            if chunk is not None:
                read_once = True
                who = who or chunk.node
                yield chunk
                if not follow or chunk.done:
                    return
                pos = max(pos, chunk.next)
            pause = poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WaitTimeout(job_id, timeout or 0.0, None)
                pause = min(pause, left)
            time.sleep(pause)

    def _read_logs(self, key: SigningKey, job_id: str, path: str, ttl: float) -> JobLogs:
        auth = sign_output_auth(key, job_id, min(ttl, MAX_OUTPUT_AUTH_TTL))
        r = self._t.request("GET", path, headers={"Authorization": auth, "Accept": "application/json"})
        try:
            raw = r.json()
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return JobLogs.from_dict(raw)
        except ValueError as e:
            raise TransportError(f"GET {path}: unreadable answer: {e}") from None

    def logs(
        self,
        job_id: str,
        *,
        node: Optional[str] = None,
        follow: bool = False,
        since: int = 0,
        text: bool = True,
        poll_interval: float = LOG_POLL_INTERVAL,
        timeout: Optional[float] = None,
    ) -> Union[str, bytes, Iterator[str], Iterator[bytes]]:
        """A container job's stdout and stderr (GET /v1/jobs/{id}/logs), for its consumer.

        Without ``follow``: the log from position ``since`` as it stands, as text (UTF-8,
        undecodable bytes replaced) or, with ``text=False``, bytes. With ``follow=True``: a
        generator of each new piece as the job runs, polled every ``poll_interval`` (0.5)
        seconds, that ends once the job has ended and the log is complete. ``node`` picks
        whose log, for a redundant job (see :meth:`log_reads` for ``nodes``, the replicas
        that logged); by default the job's node or its first replica with logs.

        The router running the job keeps the last MiB of each node's log while it holds the
        job (finished jobs for a while): an older start is cut (``JobLogs.truncated``). A
        job no node has logged for gives an empty log. A chain node's REST API keeps no logs
        (:class:`~omnisync.errors.Unavailable`); a server without the route answers
        :class:`~omnisync.errors.NotSupportedByServer`.
        """
        reads = self.log_reads(job_id, node=node, since=since, follow=follow, poll_interval=poll_interval, timeout=timeout)
        if follow:
            return _follow_logs(reads, text)
        data = b"".join(c.data for c in reads)
        return data.decode("utf-8", "replace") if text else data

    def list(
        self,
        limit: int = 20,
        status: Optional[str] = None,
        *,
        after: Optional[str] = None,
        chain: bool = False,
    ) -> JobList:
        """One page of the client's own jobs, newest first: at most ``limit`` (1 to 500),
        only those in ``status`` if given, after the job id ``after`` (the previous page's
        ``next``). Returns a :class:`JobList`: a list of :class:`Job` (without events) with
        ``.next`` set when there are more (see :meth:`iter_jobs` to follow it).

        It asks GET /v1/jobs with a request signed by the client's key (nobody lists
        another's jobs); the routers remember finished jobs for a while. A REST API that
        keeps no job list (a chain node's, which answers 503 ``unavailable``), or
        ``chain=True``, reads them from the chain instead, as ``omnisync job list --chain``
        does: by the account's sequence numbers (a job's id derives from its consumer and
        its create_job's sequence), through the last 1000 transactions. Such a page has
        ``from_chain`` set. Any other error is raised.
        """
        if not 1 <= limit <= MAX_JOB_LIST_LIMIT:
            raise ValueError(f"limit {limit}: want 1 to {MAX_JOB_LIST_LIMIT}")
        if not chain:
            try:
                return self._list_page(limit, status, after)
            except Unavailable as e:
                if not _keeps_no_list(e):
                    raise
        return self._scan_page(limit, status, after)

    def iter_jobs(
        self,
        status: Optional[str] = None,
        *,
        page_size: int = 100,
        after: Optional[str] = None,
        chain: bool = False,
    ) -> Iterator[Job]:
        """Every one of the client's jobs (only ``status`` if given), newest first, fetched
        ``page_size`` at a time by following each page's ``next`` (see :meth:`list`, whose
        fallback to the chain applies here too)."""
        if not 1 <= page_size <= MAX_JOB_LIST_LIMIT:
            raise ValueError(f"page_size {page_size}: want 1 to {MAX_JOB_LIST_LIMIT}")
        if not chain:
            try:
                page = self._list_page(page_size, status, after)
            except Unavailable as e:
                if not _keeps_no_list(e):
                    raise
            else:
                while True:
                    yield from page
                    if not page.next:
                        return
                    page = self._list_page(page_size, status, page.next)
        yield from self._scan(status, after)

    def _list_page(self, limit: int, status: Optional[str], after: Optional[str]) -> JobList:
        """GET /v1/jobs, signed."""
        key = self._require_key()
        query = {"limit": str(limit)}
        if status:
            query["status"] = status
        if after:
            query["after"] = after
        auth = sign_job_list_auth(key, 60)
        r = self._t.request("GET", "/v1/jobs?" + urlencode(query), headers={"Authorization": auth, "Accept": "application/json"})
        try:
            raw = r.json()
        except ValueError as e:
            raise TransportError(f"GET /v1/jobs: the answer is not JSON: {e}") from None
        if not isinstance(raw, dict):
            raise TransportError("GET /v1/jobs: the answer is not a JSON object")
        return JobList.from_dict(raw)

    def _scan_page(self, limit: int, status: Optional[str], after: Optional[str]) -> JobList:
        jobs: List[Job] = []
        more = False
        for j in self._scan(status, after):
            if len(jobs) == limit:
                more = True
                break
            jobs.append(j)
        return JobList(jobs, next=jobs[-1].id if more else "", from_chain=True)

    def _scan(self, status: Optional[str], after: Optional[str]) -> Iterator[Job]:
        """The client's jobs read from the chain by its transaction sequences, newest first,
        through the last 1000 transactions (after the job ``after`` when given)."""
        addr = self.address
        seq = self.account(addr).seq
        skipping = bool(after)
        for s in range(seq - 1, max(seq - _LIST_SCAN, 0) - 1, -1):
            jid = derive_job_id(addr, s)
            if skipping:
                skipping = jid != after
                continue
            try:
                j = self.get(jid)
            except NotFound:
                continue  # that transaction was not a create_job
            if status is None or j.status == status:
                yield dataclasses.replace(j, events=[])
        if skipping:
            raise ValueError(f"after {after!r}: not one of this account's jobs in its last {_LIST_SCAN} transactions")

    # Outputs.

    def output(self, job_id: str, *, ttl: float = 60) -> JobOutput:
        """GET /v1/jobs/{id}/output with a request signed by the consumer's key, good for
        ``ttl`` seconds. The bytes are checked against the digest the server names."""
        key = self._require_key()
        auth = sign_output_auth(key, job_id, min(ttl, MAX_OUTPUT_AUTH_TTL))
        path = _job_path(job_id) + "/output"
        r = self._t.request("GET", path, headers={"Authorization": auth, "Accept": "application/octet-stream"})
        verified = r.headers.get(_HEADER_VERIFIED, "")
        if verified not in ("true", "false"):
            raise OmniSyncError(f"GET {path}: Omni-Verified header is {verified!r}, want true or false")
        digest = r.headers.get(_HEADER_DIGEST, "")
        got = digest_of(r.data)
        if got != digest:
            raise DigestMismatch(f"GET {path}: output of {len(r.data)} bytes has digest {got}, server says {digest!r}")
        return JobOutput(job_id=job_id, digest=digest, verified=verified == "true", status=r.headers.get(_HEADER_STATUS, ""), data=r.data)

    def result(
        self,
        job_id: str,
        download_to: Optional[PathLike] = None,
        *,
        allow_unverified: bool = False,
        kind: Optional[str] = None,
        ttl: float = 60,
        max_files: int = DEFAULT_MAX_FILES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Union[TensorResult, ContainerResult]:
        """Download a job's output, check it, decode it and, with ``download_to``, save it.

        The bytes must match the digest the server serves them under and the result digest
        committed on chain. Unless ``allow_unverified``, the job must have settled verified
        (:class:`UnverifiedResult` otherwise). A tensor job's output (``kind="tensor"``) is
        decoded by its kernel: ``matrix`` is A·B as an :class:`Int32Matrix` (matmul-int8)
        or a :class:`Float32Matrix` (matmul-fp32), or an mlp-int8 job's output rows as an
        :class:`Int8Matrix` (the checked accumulators in ``trace``), saved as
        ``DIR/<job id>.npy`` as ``omnisync job result`` saves it; a container job's
        (``kind="container"``) an archive, unpacked safely under ``DIR`` as
        ``DIR/exit_code`` and ``DIR/outputs/<path>``. ``kind=None`` takes the job's kind
        from the server (``Job.kind``), or, from a server that does not report it, tells
        them apart by content.
        """
        out = self.output(job_id, ttl=ttl)
        job = self.get(job_id)
        if job.result_digest and job.result_digest != out.digest:
            raise DigestMismatch(f"job {job_id}: the output served is {out.digest}, the chain committed {job.result_digest}")
        if not out.verified and not allow_unverified:
            raise UnverifiedResult(job_id, out.status or job.status)
        if kind is None:
            kind = job.kind or ("tensor" if out.data[:4] in _TENSOR_MAGICS else "container")
        if kind == "tensor":
            r = _tensor_result(out)
            if download_to is not None:
                d = Path(download_to)
                d.mkdir(parents=True, exist_ok=True)
                r = dataclasses.replace(r, path=r.matrix.save_npy(d / f"{job_id}.npy"))
            return r
        if kind != "container":
            raise ValueError(f"kind {kind!r}: want 'tensor', 'container' or None (the job is {job.kind or 'of unknown kind'})")
        co = unpack_output(out.data, max_files=max_files, max_bytes=max_bytes)
        directory = None
        if download_to is not None:
            write_output(download_to, co)
            directory = Path(download_to)
        return ContainerResult(job_id, out.digest, out.verified, out.status, co.exit_code, co.files, directory)

    # Transactions.

    def cancel(self, job_id: str) -> TxReceipt:
        """Cancel a job no node has committed a result for: its budget is refunded in full.

        Signs a ``cancel_job`` transaction and waits for it to commit. A job past that
        point is refused with :class:`~omnisync.errors.BadRequest` (field ``tx``, the
        ledger's reason).
        """
        key = self._require_key()
        acct = self._t.call("GET", "/v1/chain/accounts/" + path_escape(key.address))
        tx = sign_cancel_job(key, self.chain_id(), int(acct.get("seq", 0)), job_id)
        return self.broadcast_tx(tx)

    def broadcast_tx(self, tx: bytes) -> TxReceipt:
        """POST /v1/chain/txs: submit a signed transaction and wait for it to commit."""
        r = self._t.call("POST", "/v1/chain/txs", _gojson.dumps({"tx": tx}))
        sender = self._key.address if self._key else ""
        return TxReceipt(sender=sender, hash=str(r.get("hash", "")), height=int(r.get("height", 0)))


# The first bytes of each tensor kernel's output: an OMT1 matrix, an MLP trace, a zk result.
_TENSOR_MAGICS = (OMT_MAGIC, TRACE_MAGIC, ZK_RESULT_MAGIC)


def _escrow_committed(job: Job) -> bool:
    """Whether the job's escrow has committed: the router records the ``escrowed`` event then."""
    return any(e.stage == "escrowed" for e in job.events)


def _tensor_result(out: JobOutput) -> TensorResult:
    """Decode a tensor job's output by its content, as ``omnisync job result`` does: A·B
    of matmul-int8 (int32) or matmul-fp32 (float32), or the int8 output rows of an
    mlp-int8 batch (its trace's accumulators kept in ``trace``) or of a zk job (its proof,
    which the chain's committee verified, kept in ``proof``)."""
    b = out.data
    base = (out.job_id, out.digest, out.verified, out.status)
    if b[:4] == OMT_MAGIC and len(b) > 4 and b[4] == DTYPE_FLOAT32:
        return TensorResult(*base, Float32Matrix.from_omt(b), kernel=KERNEL_MATMUL_FP32)
    if b[:4] == TRACE_MAGIC:
        t = MLPTrace.from_omlt(b)
        return TensorResult(*base, t.output, kernel=KERNEL_MLP_INT8, trace=t)
    if b[:4] == ZK_RESULT_MAGIC:
        row, proof = zk_output(b)
        return TensorResult(*base, row, kernel=KERNEL_MLP_INT8, proof=proof)
    if b[:4] == OMT_MAGIC and len(b) > 4 and b[4] != DTYPE_INT32:
        raise EncodingError(f"job {out.job_id}: an OMT1 matrix of dtype {b[4]} is no kernel's output (int32 or float32)")
    return TensorResult(*base, Int32Matrix.from_omt(b), kernel=KERNEL_MATMUL_INT8)


def _job_path(job_id: str) -> str:
    return "/v1/jobs/" + path_escape(job_id)


def _keeps_no_list(e: Unavailable) -> bool:
    """Whether GET /v1/jobs was refused because the API keeps no job list: a chain node's
    REST API (no router) answers 503 with code "unavailable"."""
    return e.status == 503 and e.code == "unavailable"


def _follow_logs(reads: Iterator[JobLogs], text: bool) -> Iterator[Any]:
    """Each new piece of a followed log, as bytes or as text decoded across reads (a
    character split between two reads comes out whole)."""
    dec = codecs.getincrementaldecoder("utf-8")("replace") if text else None
    for c in reads:
        if dec is None:
            if c.data:
                yield c.data
            continue
        piece = dec.decode(c.data)
        if piece:
            yield piece
    if dec is not None:
        tail = dec.decode(b"", final=True)
        if tail:
            yield tail


class EventPrinter:
    """An ``on_update`` callback that prints each new event of a job once, as
    ``omnisync job wait`` does: ``06:08:55  placed     node Fb5p… scored 48.00% …``."""

    def __init__(self, file: Optional[IO[str]] = None) -> None:
        self.file = file
        self.printed = 0

    def __call__(self, job: Job) -> None:
        out = self.file if self.file is not None else sys.stderr
        for e in job.events[self.printed :]:
            print(f"  {e}", file=out, flush=True)
        self.printed = max(self.printed, len(job.events))
