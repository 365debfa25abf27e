"""Go's duration and boolean syntax, as kpromo users write flag values.

The vectors are those Go's time.ParseDuration and strconv.ParseBool document: what Go accepts
is accepted with the same value, what Go refuses is refused. Python's timedelta counts whole
microseconds, so nanosecond parts are compared at that resolution.
"""

from __future__ import annotations

from datetime import timedelta

import click
import pytest
from click.testing import CliRunner

from cip.cli.params import GoDuration, parse_go_bool, parse_go_duration

US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("+0", timedelta(0)),
        ("-0", timedelta(0)),
        ("5s", timedelta(seconds=5)),
        ("90s", timedelta(seconds=90)),
        ("-5s", timedelta(seconds=-5)),
        ("+5s", timedelta(seconds=5)),
        ("5.6s", timedelta(seconds=5.6)),
        ("5.s", timedelta(seconds=5)),
        (".5s", timedelta(seconds=0.5)),
        ("1.004s", timedelta(seconds=1.004)),
        ("100.00100s", timedelta(seconds=100.001)),
        ("11us", 11 * US),
        ("12µs", 12 * US),  # U+00B5 micro sign
        ("12μs", 12 * US),  # U+03BC Greek mu
        ("13ms", timedelta(milliseconds=13)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("3h30m", timedelta(hours=3, minutes=30)),
        ("10.5s4m", timedelta(minutes=4, seconds=10.5)),
        ("-2m3.4s", -timedelta(minutes=2, seconds=3.4)),
        ("1.5h", timedelta(minutes=90)),
        ("39h9m14.425s", timedelta(hours=39, minutes=9, seconds=14.425)),
        ("52763797000ns", timedelta(seconds=52.763797)),
        ("0.3333333333333333333h", timedelta(minutes=20)),
        ("1h2m3s4ms5us", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4, microseconds=5)),
    ],
)
def test_durations_go_accepts(text: str, expected: timedelta) -> None:
    assert abs(parse_go_duration(text) - expected) < US


@pytest.mark.parametrize(
    "text",
    ["", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "2w", "1y", "5mm", "1e3s", "1.2.3s", "5 m"],
)
def test_durations_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|unit"):
        parse_go_duration(text)


def _command(param_type: GoDuration) -> click.Command:
    @click.command()
    @click.option("--timeout", type=param_type, default="5m")
    def show(timeout: timedelta) -> None:
        click.echo(timeout.total_seconds())

    return show


def test_duration_flag_in_a_command() -> None:
    runner = CliRunner()
    assert runner.invoke(_command(GoDuration()), []).output == "300.0\n"
    assert runner.invoke(_command(GoDuration()), ["--timeout=1h30m"]).output == "5400.0\n"
    refused = runner.invoke(_command(GoDuration()), ["--timeout=3d"])
    assert refused.exit_code == 2
    assert "unknown unit 'd'" in refused.output and "1h30m" in refused.output
    negative = runner.invoke(_command(GoDuration()), ["--timeout=-5s"])
    assert negative.exit_code == 2 and "must not be negative" in negative.output
    allowed = runner.invoke(_command(GoDuration(allow_negative=True)), ["--timeout=-5s"])
    assert allowed.output == "-5.0\n"
    assert "DURATION" in runner.invoke(_command(GoDuration()), ["--help"]).output


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *((t, True) for t in ("1", "t", "T", "TRUE", "true", "True")),
        *((f, False) for f in ("0", "f", "F", "FALSE", "false", "False")),
        *((x, None) for x in ("yes", "no", "tRUE", "", "2", "on")),
    ],
)
def test_booleans_as_strconv_parses_them(text: str, value: bool | None) -> None:
    assert parse_go_bool(text) is value
