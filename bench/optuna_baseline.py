#!/usr/bin/python3
"""Optuna baseline for bench/scheduler_bench.cc: durable trials per second.

A grid sweep the way Optuna users run one: GridSampler over a one-axis grid
of --trials points, RDB storage in a fresh SQLite file (durable, like ftb's
RocksDB state), a no-op objective, one process, n_jobs=1. Prints
`key: value` lines that scheduler_bench parses:

    optuna_version: 3.1.0
    trials: 1000
    seconds: 12.3
    trials_per_second: 81.3

Exits 3 with "optuna: not installed" when `import optuna` fails (install
with `apt-get install python3-optuna` and run with /usr/bin/python3).
"""

import argparse
import os
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="grid points = trials")
    parser.add_argument("--timeout", type=float, default=60,
                        help="stop after this many seconds (trials/s uses what finished)")
    args = parser.parse_args()
    try:
        import optuna
    except ImportError:
        print("optuna: not installed")
        return 3
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="ftb_optuna_") as tmp:
        storage = "sqlite:///" + os.path.join(tmp, "optuna.db")
        grid = {"seed": list(range(args.trials))}
        study = optuna.create_study(study_name="bench", storage=storage,
                                    sampler=optuna.samplers.GridSampler(grid, seed=0))

        def objective(trial):
            trial.suggest_categorical("seed", grid["seed"])
            return 0.0

        start = time.perf_counter()
        study.optimize(objective, n_trials=args.trials, timeout=args.timeout)
        seconds = time.perf_counter() - start
        done = sum(1 for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)

    print(f"optuna_version: {optuna.__version__}")
    print(f"trials: {done}")
    print(f"seconds: {seconds:.3f}")
    print(f"trials_per_second: {done / seconds:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
