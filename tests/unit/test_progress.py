"""Progress in CI logs: plain lines naming the phase and what was counted."""

from __future__ import annotations

import io

from cip.report.progress import RequestProgress


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with RequestProgress("promote", "destinations done", stream=stream, every=0.0) as advance:
        advance(2)
        advance(3)
    assert stream.getvalue().splitlines() == [
        "promote: 2 destinations done so far",
        "promote: 5 destinations done so far",
    ]
