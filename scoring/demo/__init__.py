"""The demo county: synthetic subjects and events (:mod:`.county`) and the
end-to-end run behind ``gridcredit demo`` (:mod:`.run`)."""

from __future__ import annotations

from .county import (
    DEFAULT_MONTHS,
    DEFAULT_SEED,
    DemoFiles,
    DemoStats,
    generate_county,
    generate_events_file,
    uscc_check_char,
    uscc_valid,
    write_subjects,
)
from .run import run_demo

__all__ = [
    "DEFAULT_MONTHS",
    "DEFAULT_SEED",
    "DemoFiles",
    "DemoStats",
    "generate_county",
    "generate_events_file",
    "run_demo",
    "uscc_check_char",
    "uscc_valid",
    "write_subjects",
]
