"""Dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kb.search import Searcher


def get_searcher(request: Request) -> Searcher:
    """The searcher, once start-up has loaded the model (waits for it a little, then 503 with the reason)."""
    startup = getattr(request.app.state, "startup", None)
    if startup is not None:
        startup.require()
    searcher: Searcher = request.app.state.searcher
    return searcher


SearcherDep = Annotated[Searcher, Depends(get_searcher)]
