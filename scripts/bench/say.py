"""`loa say --engine espeak` against the bare espeak-ng | ffmpeg pipeline, in one run.

    .venv/bin/python scripts/bench/say.py [--rounds 7] [--compare DIR]

Text: the seed plan's section "I. MỤC ĐÍCH YÊU CẦU" (about 320 words,
tests/data/seed-section-1.txt). Each round runs both commands, alternating, with a
fresh cache for `loa say` so it renders for real; the medians and their ratio are
printed with the machine's details. The target is a ratio of at most 1.5.

--compare DIR also times, in the same rounds, `loa say` from another source tree
(the packages audio, loa, scheduler of an earlier commit, e.g. exported with
`git archive HEAD audio loa scheduler web | tar -x -C DIR`), to measure a change.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[2]
TEXT = ROOT / "tests" / "data" / "seed-section-1.txt"
LOA = Path(sys.executable).with_name("loa")


def timed(argv: list[str] | str, env: dict[str, str], shell: bool = False) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, shell=shell, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another source tree to time too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    env = {**os.environ, "LOA_DATA": str(work / "var")}
    bare = (
        f"espeak-ng -v vi --stdout -f {TEXT} | "
        f"ffmpeg -loglevel error -y -i - -ac 1 -b:a 64k {work / 'bare.mp3'}"
    )
    say = [str(LOA), "say", "--engine", "espeak", "-o", str(work / "loa.mp3"), "-"]
    runs = {"loa say --engine espeak": env}
    if args.compare:
        runs[f"loa say from {args.compare}"] = {**env, "PYTHONPATH": str(args.compare.resolve())}
    times: dict[str, list[float]] = {"bare espeak-ng | ffmpeg": [], **{name: [] for name in runs}}
    for _ in range(args.rounds):
        for name, run_env in runs.items():
            shutil.rmtree(work / "var" / "audio", ignore_errors=True)
            with TEXT.open() as stdin:
                started = time.perf_counter()
                subprocess.run(say, env=run_env, stdin=stdin, check=True, capture_output=True)
                times[name].append(time.perf_counter() - started)
        times["bare espeak-ng | ffmpeg"].append(timed(bare, env, shell=True))
    print(describe())
    print(f"words: {len(TEXT.read_text(encoding='utf-8').split())}, rounds: {args.rounds}")
    bare_median = statistics.median(times["bare espeak-ng | ffmpeg"])
    for name, taken in times.items():
        median = statistics.median(taken)
        print(
            f"{name}: median {median:.3f} s, ratio {median / bare_median:.2f}  "
            f"({', '.join(f'{t:.2f}' for t in taken)})"
        )
    print("target: a ratio of at most 1.5 for loa say")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
