"""The Spark runner: the same rules and the same ledger as the SQLite path, on a
cluster (``python -m scoring.spark`` or ``spark-submit -m``; see docs/spark.md).

Nothing here imports ``pyspark`` at import time: the SQLite path stays the
embedded default, and ``import scoring`` never loads Spark. The modules:

- :mod:`.session`: the SparkSession (``--master``), Java and the workers' Python;
- :mod:`.ingest`: subjects and events files read by Spark, checked by the ingest
  package's own record checks, deduplicated by id with the same accounting;
- :mod:`.partition`: which subjects must be scored together (linked scoring,
  catalog stock, corrections), and the per-partition scoring through the pure core;
- :mod:`.ledger`: the versioned Parquet ledger (a pointer file switched at the end);
- :mod:`.balances`: ``balances`` over the Parquet ledger (SPEC §7's contract);
- :mod:`.close`: ``close MONTH``: month figures, hash and totals in Spark SQL;
- :mod:`.month`: ``assess PERIOD`` and ``publish MONTH``: Spark metrics and
  trends, and the SQLite path's publisher over a month view;
- :mod:`.cli`: the command line.
"""

from __future__ import annotations
