"""The soak's fixtures (the lab's registries) and its numbers in pytest's summary."""

from __future__ import annotations

import pytest

from tests.lab.conftest import lab_registry, registry_factory

__all__ = ["lab_registry", "registry_factory"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what each soak did (kills, reruns, bytes uploaded, wall time), passed or failed."""
    lines = [
        str(value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == "soak"
    ]
    if lines:
        terminalreporter.section("chaos soak")
        for line in lines:
            terminalreporter.write_line(line)
