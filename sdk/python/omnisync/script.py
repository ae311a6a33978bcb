"""Run a local Python script on the network: for PyTorch, JAX or TensorFlow images.

The script and its data files become the job's inputs, mounted read-only in the container
as ``/inputs/<name>``; the command is ``python3 /inputs/<script> ARGS…`` (the script's
directory is on ``sys.path``, so helper modules shipped as data import); whatever the
script writes under ``/outputs`` comes back as the job's output::

    result = run_script(client, "train.py", image="pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
                        data=["train.csv"], args=["--epochs", "3"], download_to="out")
    model = result.read("model.pt")

Nodes do not pull images from a registry: the image must be on the nodes (pin it with
``image_id``), or be sent along as a ``docker save`` tarball (``image_archive``).

A container job is verified by redundancy: three nodes run it and two must return
byte-identical outputs. A script must therefore write the same bytes wherever it runs:
seed every generator, and prefer outputs that do not depend on floating-point order
(rounded metrics, predictions) to raw weights trained on different GPU models. By default
(``deterministic=True``) the job's environment asks the frameworks for deterministic
kernels; see :data:`DETERMINISTIC_ENV`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from .errors import SpecError
from .models import ContainerResult, Job
from .spec import env_list, valid_input_name

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client, InputData

INPUTS_DIR = "/inputs"
OUTPUTS_DIR = "/outputs"

#: Environment a script job gets with ``deterministic=True`` (the caller's ``env`` wins):
#: a fixed hash seed, and deterministic cuBLAS and TensorFlow kernels. JAX users add
#: ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` where their version knows the flag.
DETERMINISTIC_ENV = {
    "PYTHONHASHSEED": "0",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "TF_DETERMINISTIC_OPS": "1",
}

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ScriptJob:
    """A script packed as a container job: what :func:`submit_script` submits."""

    image: str
    command: Tuple[str, ...]
    env: Tuple[str, ...]
    inputs: Dict[str, "InputData"]


def script_job(
    script: PathLike,
    *,
    image: str,
    args: Sequence[Any] = (),
    data: Union[None, Mapping[str, "InputData"], Sequence[PathLike]] = None,
    python: str = "python3",
    env: Union[None, Mapping[str, str], Sequence[str]] = None,
    deterministic: bool = True,
) -> ScriptJob:
    """Pack a script, its arguments and its data files (a list of paths, named by base name,
    or ``{name: bytes or path}``) as a container job. Nothing is read but the file names.

    With ``deterministic`` the environment starts from :data:`DETERMINISTIC_ENV`; entries
    of ``env`` replace those of the same name."""
    path = Path(script)
    if not path.is_file():
        raise SpecError("script", f"{path} is not a file")
    name = path.name
    if not valid_input_name(name):
        raise SpecError("script", f'"{name}": a script name must be letters, digits, ".", "_" or "-"')
    inputs: Dict[str, InputData] = {name: path}
    if isinstance(data, Mapping):
        named = dict(data)
    elif data is None:
        named = {}
    elif isinstance(data, (str, bytes, os.PathLike)):
        raise TypeError("data must be a list of paths or a mapping {name: bytes or path}")
    else:
        named = {}
        for p in data:
            n = Path(p).name
            if n in named:
                raise SpecError("data", f'two files are named "{n}": give them as a mapping with distinct names')
            named[n] = p
    for n, v in named.items():
        if n == name:
            raise SpecError("data", f'"{n}" is also the script\'s name')
        inputs[n] = v
    command = (python, f"{INPUTS_DIR}/{name}", *(str(a) for a in args))
    given = env_list(dict(env) if isinstance(env, Mapping) else env)
    given_keys = {e.partition("=")[0] for e in given}
    defaults = env_list({k: v for k, v in DETERMINISTIC_ENV.items() if k not in given_keys}) if deterministic else ()
    return ScriptJob(image=image, command=command, env=defaults + given, inputs=inputs)


def submit_script(
    client: "Client",
    script: PathLike,
    *,
    image: str,
    args: Sequence[Any] = (),
    data: Union[None, Mapping[str, "InputData"], Sequence[PathLike]] = None,
    python: str = "python3",
    env: Union[None, Mapping[str, str], Sequence[str]] = None,
    deterministic: bool = True,
    gpus: int = 1,
    timeout_seconds: int = 3600,
    **kwargs: Any,
) -> Job:
    """Submit a script as a container job and return the job at once.

    ``gpus`` defaults to 1 (the frameworks' point); other keyword arguments go to
    :meth:`omnisync.Client.submit_container` (``image_id``, ``image_archive``,
    ``budget_uomni``, ``max_price_per_hour_uomni``, ``cpu_milli``, ``memory_mib``, …).
    """
    job = script_job(script, image=image, args=args, data=data, python=python, env=env, deterministic=deterministic)
    return client.submit_container(
        job.image, command=job.command, env=job.env, inputs=job.inputs, gpus=gpus, timeout_seconds=timeout_seconds, **kwargs
    )


def run_script(
    client: "Client",
    script: PathLike,
    *,
    image: str,
    download_to: Optional[PathLike] = None,
    on_update: Optional[Callable[[Job], None]] = None,
    wait_timeout: Optional[float] = None,
    allow_unverified: bool = False,
    **kwargs: Any,
) -> ContainerResult:
    """Submit a script (see :func:`submit_script`), wait for it to settle verified, and
    return its output files (unpacked under ``download_to/outputs`` when given).

    Raises :class:`~omnisync.errors.JobFailed` if the job did not settle verified. The
    script's own exit status is ``result.exit_code``.
    """
    job = submit_script(client, script, image=image, **kwargs)
    client.wait(job.id, on_update, timeout=wait_timeout, check=not allow_unverified)
    res = client.result(job.id, download_to, kind="container", allow_unverified=allow_unverified)
    assert isinstance(res, ContainerResult)
    return res
