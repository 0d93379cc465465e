"""The ``bontheory`` command line: ``list``, ``run``, ``plot``, ``reproduce``."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def _module(name: str):
    import experiments

    if name not in experiments.EXPERIMENTS:
        raise SystemExit(f"unknown experiment {name!r}; `bontheory list` shows them")
    return importlib.import_module(f"experiments.{name}")


def _run_one(name: str, quick: bool, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from bontheory.runs import open_run

    mod = _module(name)
    config = mod.QUICK if quick else mod.Config()
    run = open_run(name, config, out)
    metrics = mod.run(config, run)
    run.save_metrics(metrics)
    mod.plot(run.load_metrics(), run.root)
    print(f"{name}: results in {run.root}")
    return run.root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bontheory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    p_run = sub.add_parser("run")
    p_run.add_argument("name")
    p_run.add_argument("--quick", action="store_true")
    p_run.add_argument("--out", type=Path, default=Path("results"))
    p_rep = sub.add_parser("reproduce")
    p_rep.add_argument("--quick", action="store_true")
    p_rep.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args(argv)

    import experiments

    if args.command == "list":
        for name in experiments.EXPERIMENTS:
            print(f"{name:20s} {_module(name).SUMMARY}")
    elif args.command == "run":
        _run_one(args.name, args.quick, args.out)
    elif args.command == "reproduce":
        for name in experiments.EXPERIMENTS:
            _run_one(name, args.quick, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
