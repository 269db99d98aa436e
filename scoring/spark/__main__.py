"""``python -m scoring.spark``: see :mod:`scoring.spark.cli`."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
