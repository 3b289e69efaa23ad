"""`loa say --engine espeak` against the bare espeak-ng | ffmpeg pipeline, in one run.

    .venv/bin/python scripts/bench/say.py [--rounds 7]

Text: the seed plan's section "I. MỤC ĐÍCH YÊU CẦU" (about 320 words,
tests/data/seed-section-1.txt). Each round runs both commands, alternating, with a
fresh cache for `loa say` so it renders for real; the medians and their ratio are
printed with the machine's details. The target is a ratio of at most 2.5.
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    env = {**os.environ, "LOA_DATA": str(work / "var")}
    bare = (
        f"espeak-ng -v vi --stdout -f {TEXT} | "
        f"ffmpeg -loglevel error -y -i - -ac 1 -b:a 64k {work / 'bare.mp3'}"
    )
    say = [str(LOA), "say", "--engine", "espeak", "-o", str(work / "loa.mp3"), "-"]
    loa_times, bare_times = [], []
    for _ in range(args.rounds):
        shutil.rmtree(work / "var" / "audio", ignore_errors=True)
        with TEXT.open() as stdin:
            started = time.perf_counter()
            subprocess.run(say, env=env, stdin=stdin, check=True, capture_output=True)
            loa_times.append(time.perf_counter() - started)
        bare_times.append(timed(bare, env, shell=True))
    loa_median, bare_median = statistics.median(loa_times), statistics.median(bare_times)
    print(describe())
    print(f"words: {len(TEXT.read_text(encoding='utf-8').split())}, rounds: {args.rounds}")
    for name, median, times in (
        ("bare espeak-ng | ffmpeg", bare_median, bare_times),
        ("loa say --engine espeak", loa_median, loa_times),
    ):
        print(f"{name}: median {median:.3f} s  ({', '.join(f'{t:.2f}' for t in times)})")
    print(f"ratio: {loa_median / bare_median:.2f} (target <= 2.5)")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
