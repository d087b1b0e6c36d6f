"""Prepare a folder once, however many processes ask at the same time (the converted model, its ONNX export).

The caller checks whether the target is ready; if not, it is built under a file lock next to it
(``<target>.lock``), after checking again: another process may have finished it while this one waited.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

from kb.errors import ModelError

#: How long to wait for another process preparing the same folder before giving up with a clear message.
LOCK_TIMEOUT_S = 900.0


def prepare_once(
    target: Path,
    build: Callable[[], None],
    *,
    ready: Callable[[], bool],
    ready_under_lock: Callable[[], bool] | None = None,
    busy: str,
) -> Path:
    """Return ``target`` once ``ready()``; else run ``build`` under the lock unless it became ready meanwhile.

    ``ready_under_lock`` replaces ``ready`` for the check under the lock (a thorough check that would be too
    slow for every call). ``busy`` says what another process is doing, e.g. "preparing the bundled model in
    /x", for the :class:`~kb.errors.ModelError` raised when the lock is not free after :data:`LOCK_TIMEOUT_S`.
    """
    if ready():
        return target
    try:
        with FileLock(str(target.parent / f"{target.name}.lock"), timeout=LOCK_TIMEOUT_S):
            if not (ready_under_lock or ready)():
                build()
    except Timeout as exc:
        raise ModelError(
            f"Another process has been {busy} for over {LOCK_TIMEOUT_S / 60:.0f} minutes; wait for it to finish "
            "or stop it, then try again."
        ) from exc
    return target
