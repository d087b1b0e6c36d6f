"""Start-up in the background: the server answers at once, ``/health`` says "starting" until the model is loaded.

If the model cannot be prepared or loaded, the service stays up and says why: ``/health`` is "degraded" with the
one-sentence reason, and every request that needs the model answers 503 with the same sentence.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from kb.errors import KBError, ModelError, StartingError
from kb.search import Searcher

log = logging.getLogger(__name__)
#: How long a request that arrives during start-up waits for the model before it is told to come back.
WAIT_FOR_MODEL_S = 20.0


class Startup:
    """Loads the model and the index once, in a thread; requests wait for it or learn why it failed."""

    def __init__(self) -> None:
        self.state: Literal["starting", "ready", "failed"] = "starting"
        self.problem: str | None = None
        self._done = threading.Event()

    def begin(self, searcher: Searcher) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(searcher,), name="kb-startup", daemon=True)
        thread.start()
        return thread

    def run(self, searcher: Searcher) -> None:
        try:
            _ = searcher.embedder.dimension  # prepares (first time) and loads the model
        except KBError as exc:
            self._fail(exc.message)
            return
        except Exception as exc:  # an unforeseen failure of torch or the model files: still one sentence
            self._fail(
                f"The model {searcher.settings.model!r} cannot be loaded ({type(exc).__name__}: {exc}); "
                "run `kb doctor` to see what to fix."
            )
            return
        try:
            _ = searcher.index
        except KBError as exc:
            log.warning("starting without a usable index: %s", exc)
        self.ready()

    def ready(self) -> None:
        self.state = "ready"
        self._done.set()

    def _fail(self, problem: str) -> None:
        self.state, self.problem = "failed", problem
        log.error("the service cannot search: %s", problem)
        self._done.set()

    def require(self, wait: float = WAIT_FOR_MODEL_S) -> None:
        """Return when the model is loaded; raise the reason it failed, or that start-up is still running."""
        if not self._done.wait(wait):
            raise StartingError("The service is starting (loading the search model); try again in a few seconds.")
        if self.problem is not None:
            raise ModelError(self.problem)
