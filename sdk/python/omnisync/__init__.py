"""OmniSync Python SDK: submit verified compute jobs to an OmniSync network.

    from omnisync import Client, EventPrinter
    c = Client("http://127.0.0.1:7070/v1", "~/.omnisync/devnet/keys/consumer.json")
    job = c.submit_tensor({"a": "A.npy", "b": "B.npy"})
    job = c.wait(job.id, EventPrinter())
    c.result(job.id, download_to=".").matrix      # A·B as int32, verified on chain

Standard library plus ``cryptography`` (ed25519); NumPy is optional.
"""

from .archive import ContainerOutput, OutputFile, check_output_path, unpack_output, write_output
from .client import DEFAULT_INLINE_LIMIT, Client, EventPrinter
from .errors import (
    ApiError,
    ArchiveError,
    BadRequest,
    Conflict,
    DigestMismatch,
    EncodingError,
    Forbidden,
    InputUploadError,
    InsufficientFunds,
    JobFailed,
    KeyFileError,
    NotFound,
    NotSupportedByServer,
    OmniSyncError,
    ServerError,
    SpecError,
    TransportError,
    Unauthorized,
    Unavailable,
    UnverifiedResult,
    WaitTimeout,
)
from .keys import SigningKey, address_of, public_key_of
from .models import (
    FINAL_STATUSES,
    Account,
    ContainerResult,
    Event,
    Job,
    JobOutput,
    Node,
    Payment,
    Replica,
    Scores,
    TensorResult,
    TxReceipt,
    is_final,
)
from .npy import Int8Matrix, Int32Matrix, as_int8_matrix, matmul
from .script import ScriptJob, run_script, script_job, submit_script
from .signing import job_id, sign_cancel_job, sign_create_job, sign_output_auth, sign_tx, tx_hash
from .spec import (
    Input,
    JobSpec,
    Placement,
    Resources,
    Workload,
    container_spec,
    digest_of,
    format_omni,
    omni,
    tensor_spec,
)

__version__ = "0.1.0"

__all__ = [
    "Account",
    "ApiError",
    "ArchiveError",
    "BadRequest",
    "Client",
    "Conflict",
    "ContainerOutput",
    "ContainerResult",
    "DEFAULT_INLINE_LIMIT",
    "DigestMismatch",
    "EncodingError",
    "Event",
    "EventPrinter",
    "FINAL_STATUSES",
    "Forbidden",
    "Input",
    "InputUploadError",
    "InsufficientFunds",
    "Int32Matrix",
    "Int8Matrix",
    "Job",
    "JobFailed",
    "JobOutput",
    "JobSpec",
    "KeyFileError",
    "Node",
    "NotFound",
    "NotSupportedByServer",
    "OmniSyncError",
    "OutputFile",
    "Payment",
    "Placement",
    "Replica",
    "Resources",
    "Scores",
    "ScriptJob",
    "ServerError",
    "SigningKey",
    "SpecError",
    "TensorResult",
    "TransportError",
    "TxReceipt",
    "Unauthorized",
    "Unavailable",
    "UnverifiedResult",
    "WaitTimeout",
    "Workload",
    "address_of",
    "as_int8_matrix",
    "check_output_path",
    "container_spec",
    "digest_of",
    "format_omni",
    "is_final",
    "job_id",
    "matmul",
    "omni",
    "public_key_of",
    "run_script",
    "script_job",
    "sign_cancel_job",
    "sign_create_job",
    "sign_output_auth",
    "sign_tx",
    "submit_script",
    "tensor_spec",
    "tx_hash",
    "unpack_output",
    "write_output",
]
