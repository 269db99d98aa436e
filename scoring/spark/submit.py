"""The script to give ``spark-submit`` (which runs a file, not a module)::

    spark-submit --master yarn $(python -c 'import scoring.spark.submit as m; print(m.__file__)') \\
        score --scheme rules-repo --subjects hdfs:///… --events hdfs:///… --ledger /mnt/ledger

The arguments are those of ``python -m scoring.spark`` without ``--master``.
"""

from __future__ import annotations

from scoring.spark.cli import main

if __name__ == "__main__":
    main()
