"""Argparse value types shared by the commands: a bad value is argparse's one-line error
naming the option (``dredge query: argument --limit: ...``), exit status 2."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An integer in [low, high] (decimal digits only: no 1e3, 0x10 or 1_000)."""

    def convert(text: str) -> int:
        t = text.strip()
        if not t.lstrip("-").isdigit() or not t.isascii():
            raise argparse.ArgumentTypeError(f"an integer, not {text!r}")
        value = int(t)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range [{low}, {high}]")
        return value

    convert.__name__ = "integer"
    return convert


def float_in(low: float, high: float) -> Callable[[str], float]:
    """A finite number in [low, high] (no nan, no inf)."""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a number, not {text!r}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number in [{low:g}, {high:g}]")
        return value

    convert.__name__ = "number"
    return convert


MAX_INT = 2**31 - 1
positive = int_in(1, MAX_INT)
price = float_in(0.0, 1e6)  # USD per GB


def iso_period(text: str) -> str:
    """An ISO 8601 period such as PT1H, P1D or PT30M (what Druid's supervisor takes)."""
    if not re.fullmatch(r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?",
                        text):
        raise argparse.ArgumentTypeError(f"an ISO 8601 period such as PT1H or P1D, not {text!r}")
    return text
