from __future__ import annotations

from typing import Any

import pytest

from .harness import Answer, FakeTime, Harness, MakeHarness, Wire


@pytest.fixture(params=["sync", "async"])
def api(request: pytest.FixtureRequest) -> MakeHarness:
    """``api(answer, ..., **client_kwargs)``: a harness for the sync, then the async client."""
    mode: str = request.param

    def make(*answers: Answer, **client_kwargs: Any) -> Harness:
        return Harness(mode, Wire(*answers), FakeTime(), client_kwargs)

    return make
