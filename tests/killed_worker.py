"""The killed-worker harness: a real Celery worker on a test settings module, killed mid-task.

A test writes its worker's settings (tests.settings plus its own lines) and gets the worker's
environment from `worker_env`, starts the worker with `doomed_worker`, sends its task, and calls
the `kill_when` the block yields: once the task is where the test wants it, the worker's whole
process group gets SIGKILL, as a crash or an OOM kill would. A task too quick to be caught gets its
slowness from the worker's settings module (`slow_in_worker`), never from a knob in product code.
"""

from __future__ import annotations

import functools
import importlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery.signals import task_prerun
from django.db import connection

from tests.processes import ROOT, celery_worker, kill, wait_until

# kill_when(condition, what): wait (60 s at most) until `condition` holds, then kill the worker.
KillWhen = Callable[[Callable[[], bool], str], None]


def worker_env(
    tmp_path: Path, module: str, settings: str, broker: str, **extra: str
) -> dict[str, str]:
    """The environment of a worker (or beat) process on `broker` and the test database, whose
    Django settings are the module `module`: tests.settings followed by `settings` (Python
    source), written to `tmp_path`. `extra`: more environment variables."""
    (tmp_path / f"{module}.py").write_text(
        f"from tests.settings import *  # noqa: F403\n\n{settings}"
    )
    database = connection.settings_dict
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": module,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        **extra,
    }


@contextmanager
def doomed_worker(
    *, queues: str, name: str, env: dict[str, str], log: Path, concurrency: int = 1
) -> Iterator[KillWhen]:
    """A `celery -A cryptosatx worker` (tests.processes.celery_worker) that the block must kill:
    it yields `kill_when(condition, what)`, which waits until `condition` holds (the task is in
    the worker's hands) and SIGKILLs the worker. A block that ends without killing it fails: a
    doomed worker that lived tested nothing."""
    killed = False
    with celery_worker(
        queues=queues, name=name, env=env, log=log, concurrency=concurrency
    ) as worker:

        def kill_when(condition: Callable[[], bool], what: str) -> None:
            nonlocal killed
            wait_until(condition, 60, f"{what} (logs in {log.parent})")
            kill(worker)
            killed = True

        yield kill_when
    if not killed:
        raise AssertionError(f"worker {name} was never killed")


def slow_in_worker(target: str, seconds: float) -> None:
    """Make every call of `target` ("package.module.function") in this worker sleep `seconds`
    first, so a test can kill the worker while a task sits there. Called from a worker's settings
    module; the product must look the function up in that module when it calls it.

    Installed as each pool process starts its first task: the settings module is read before
    Django is set up, when the product's modules cannot be imported yet."""
    module_name, _, name = target.rpartition(".")

    def install(**_: Any) -> None:
        module = importlib.import_module(module_name)
        original = getattr(module, name)
        if getattr(original, "slowed_in_worker", False):
            return

        @functools.wraps(original)
        def slowed(*args: Any, **kwargs: Any) -> Any:
            time.sleep(seconds)
            return original(*args, **kwargs)

        slowed.slowed_in_worker = True  # type: ignore[attr-defined]
        setattr(module, name, slowed)

    task_prerun.connect(install, weak=False)
