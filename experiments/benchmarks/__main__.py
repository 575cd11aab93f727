"""Run every benchmark module (``bench_*.py``) and write its table into README.md.

``python -m experiments.benchmarks`` runs all; ``python -m experiments.benchmarks data env`` runs
``bench_data.py`` and ``bench_env.py`` only.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> None:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"experiments.benchmarks.bench_{name}")
        print(f"== {name}")
        module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
