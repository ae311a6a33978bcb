"""Signed transactions and signed output requests, byte-compatible with the Go code.

A transaction (``internal/ledger/tx.go``, version 1) is::

    [0]      version (1)
    [1:33]   the signer's ed25519 public key
    [33:97]  signature over b"omnisync/tx/v1\\x00" + body
    [97:]    body: Go's JSON encoding of {"chain_id", "seq", <message kind>: {…}}

The signature covers the body bytes exactly as sent. An output request
(``api/output.go``) is an ``Authorization: OmniSig address="…", expires="…",
signature="…"`` header over ``"omnisync job output v1\\n<job id>\\n<expires>"``; the
same header reads the job's logs. A job-list request (GET /v1/jobs) carries the same header
over ``"omnisync job list v1\\n<address>\\n<expires>"``, which no output request can be
mistaken for.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any, Dict, Mapping, Optional

from . import _gojson
from .keys import SigningKey
from .spec import JobSpec

TX_VERSION = 1
SIGN_DOMAIN = b"omnisync/tx/v1\x00"
MAX_TX_BYTES = 64 << 10

OUTPUT_AUTH_SCHEME = "OmniSig"
MAX_OUTPUT_AUTH_TTL = 15 * 60

# The message kinds a body may carry, in the order ledger.Msg declares them.
MSG_KINDS = (
    "transfer",
    "register_node",
    "create_job",
    "assign_job",
    "commit_result",
    "reveal_result",
    "attest",
    "cancel_job",
    "stake",
    "unstake",
    "propose",
    "vote",
)


def tx_body(chain_id: str, seq: int, kind: str, msg: Mapping[str, Any]) -> bytes:
    """Go's encoding of ``ledger.Body{ChainID, Seq, Msg}`` with one message set.

    ``msg`` holds the message's fields in the order its Go struct declares them.
    """
    if kind not in MSG_KINDS:
        raise ValueError(f"unknown message kind {kind!r} (one of: {', '.join(MSG_KINDS)})")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 1 << 64:
        raise ValueError(f"seq {seq!r} is not a uint64")
    return _gojson.dumps({"chain_id": chain_id, "seq": seq, kind: dict(msg)})


def sign_tx(key: SigningKey, chain_id: str, seq: int, kind: str, msg: Mapping[str, Any]) -> bytes:
    """Build and sign a transaction, as ``ledger.SignTx`` does."""
    body = tx_body(chain_id, seq, kind, msg)
    raw = bytes([TX_VERSION]) + key.public_key + key.sign(SIGN_DOMAIN + body) + body
    if len(raw) > MAX_TX_BYTES:
        raise ValueError(f"transaction is {len(raw)} bytes, limit {MAX_TX_BYTES}")
    return raw


def create_job_msg(spec: JobSpec) -> Dict[str, Any]:
    """The ``create_job`` message escrowing spec's budget (``ledger.MsgCreateJob``)."""
    return {
        "spec_hash": spec.hash(),
        "budget": spec.budget,
        "max_price_per_hour": spec.max_price_per_hour,
        "verification": spec.verification,
        "timeout_seconds": spec.timeout_seconds,
    }


def sign_create_job(key: SigningKey, chain_id: str, seq: int, spec: JobSpec) -> bytes:
    """The consumer's signed ``create_job`` transaction for spec."""
    return sign_tx(key, chain_id, seq, "create_job", create_job_msg(spec))


def sign_cancel_job(key: SigningKey, chain_id: str, seq: int, job_id: str) -> bytes:
    """The consumer's signed ``cancel_job`` transaction."""
    return sign_tx(key, chain_id, seq, "cancel_job", {"job_id": job_id})


def tx_hash(raw: bytes) -> str:
    """The transaction hash CometBFT reports: upper-case hex SHA-256 of the raw bytes."""
    return hashlib.sha256(raw).hexdigest().upper()


def job_id(consumer: str, seq: int) -> str:
    """The id of the job created by consumer's transaction with sequence seq
    (``ledger.JobID``): known before the chain knows it."""
    return "job-" + hashlib.sha256(f"job/{consumer}/{seq}".encode("utf-8")).digest()[:8].hex()


def output_auth_message(job_id: str, expires: int) -> bytes:
    """What a consumer signs to read job_id's output until expires (unix seconds)."""
    return f"omnisync job output v1\n{job_id}\n{int(expires)}".encode("utf-8")


def output_auth_header(key: SigningKey, job_id: str, expires: int) -> str:
    """The Authorization header value for GET /v1/jobs/{job_id}/output, good until expires."""
    sig = base64.b64encode(key.sign(output_auth_message(job_id, expires))).decode("ascii")
    return f'{OUTPUT_AUTH_SCHEME} address="{key.address}", expires="{int(expires)}", signature="{sig}"'


def sign_output_auth(key: SigningKey, job_id: str, ttl: float = 60, now: Optional[float] = None) -> str:
    """An output request good for ttl seconds from now (at most 15 minutes: the server
    refuses longer-lived ones so that a leaked header is soon worthless)."""
    if not 0 < ttl <= MAX_OUTPUT_AUTH_TTL:
        raise ValueError(f"ttl {ttl}s: want more than 0 and at most {MAX_OUTPUT_AUTH_TTL}s")
    t = time.time() if now is None else now
    return output_auth_header(key, job_id, int(t + ttl))


def job_list_auth_message(address: str, expires: int) -> bytes:
    """What a consumer signs to list its own jobs until expires (``api.JobListAuthMessage``)."""
    return f"omnisync job list v1\n{address}\n{int(expires)}".encode("utf-8")


def job_list_auth_header(key: SigningKey, expires: int) -> str:
    """The Authorization header value for GET /v1/jobs (key's own jobs), good until expires."""
    sig = base64.b64encode(key.sign(job_list_auth_message(key.address, expires))).decode("ascii")
    return f'{OUTPUT_AUTH_SCHEME} address="{key.address}", expires="{int(expires)}", signature="{sig}"'


def sign_job_list_auth(key: SigningKey, ttl: float = 60, now: Optional[float] = None) -> str:
    """A request to list key's jobs, good for ttl seconds from now (at most 15 minutes), as
    ``api.SignJobListAuth`` makes it."""
    if not 0 < ttl <= MAX_OUTPUT_AUTH_TTL:
        raise ValueError(f"ttl {ttl}s: want more than 0 and at most {MAX_OUTPUT_AUTH_TTL}s")
    t = time.time() if now is None else now
    return job_list_auth_header(key, int(t + ttl))
