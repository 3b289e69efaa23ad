"""`loa say --engine espeak` against the bare espeak-ng | ffmpeg pipeline, in one run.

    .venv/bin/python scripts/bench/say.py [--rounds 7] [--compare DIR]

Text: the seed plan's section "I. MỤC ĐÍCH YÊU CẦU" (about 320 words,
tests/data/seed-section-1.txt). Each round runs both commands, alternating, with a
fresh cache for `loa say` so it renders for real; the medians and their ratio are
printed with the machine's details, and the CPU time (user and system, with the
child processes) each command spent: on a loaded machine the ratio follows CPU time more
than the critical path. The target is a ratio of at most 1.5.

--compare DIR also times, in the same rounds, `loa say` from another source tree
(the packages audio, loa, scheduler of an earlier commit, e.g. exported with
`git archive HEAD audio loa scheduler web | tar -x -C DIR`), to measure a change.

--bytecode runs Loa from copies of the trees compiled to bytecode first, as `pip install`
leaves an installation. Without it, where PYTHONDONTWRITEBYTECODE is set, each run
compiles Loa's modules from source again (about 0.05 s).
"""

from __future__ import annotations

import argparse
import os
import resource
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
PACKAGES = ("audio", "loa", "scheduler", "web")


def compiled_copy(tree: Path, into: Path) -> Path:
    """The packages of `tree` copied into `into` and compiled to bytecode."""
    for package in PACKAGES:
        if (tree / package).is_dir():
            shutil.copytree(tree / package, into / package)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(into)], check=True)
    return into


def cpu_seconds() -> float:
    """User and system time of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str] | str, env: dict[str, str], **kwargs: object) -> tuple[float, float]:
    """Wall and CPU seconds of one run."""
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="another source tree to time too")
    parser.add_argument("--bytecode", action="store_true", help="run Loa compiled ahead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loa-bench-"))
    env = {**os.environ, "LOA_DATA": str(work / "var")}
    head, other = ROOT, args.compare.resolve() if args.compare else None
    if args.bytecode:
        head = compiled_copy(ROOT, work / "head")
        other = other and compiled_copy(other, work / "other")
    bare = (
        f"espeak-ng -v vi --stdout -f {TEXT} | "
        f"ffmpeg -loglevel error -y -i - -ac 1 -b:a 64k {work / 'bare.mp3'}"
    )
    say = [str(LOA), "say", "--engine", "espeak", "-o", str(work / "loa.mp3"), "-"]
    runs = {"loa say --engine espeak": {**env, "PYTHONPATH": str(head)} if args.bytecode else env}
    if other:
        runs[f"loa say from {args.compare}"] = {**env, "PYTHONPATH": str(other)}
    times: dict[str, list[tuple[float, float]]] = {
        "bare espeak-ng | ffmpeg": [],
        **{name: [] for name in runs},
    }
    load = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name, run_env in runs.items():
            shutil.rmtree(work / "var" / "audio", ignore_errors=True)
            with TEXT.open() as stdin:
                times[name].append(timed(say, run_env, stdin=stdin))
        times["bare espeak-ng | ffmpeg"].append(timed(bare, env, shell=True))
        load.append(os.getloadavg()[0])
    print(describe())
    print(f"load average (1 min) during the rounds: {min(load):.2f}-{max(load):.2f}")
    print(
        f"words: {len(TEXT.read_text(encoding='utf-8').split())}, rounds: {args.rounds}, "
        f"Loa {'compiled ahead' if args.bytecode else 'as the environment runs it'}"
    )
    bare_wall = statistics.median(wall for wall, _ in times["bare espeak-ng | ffmpeg"])
    bare_cpu = statistics.median(cpu for _, cpu in times["bare espeak-ng | ffmpeg"])
    for name, taken in times.items():
        wall = statistics.median(w for w, _ in taken)
        cpu = statistics.median(c for _, c in taken)
        print(
            f"{name}: median {wall:.3f} s, ratio {wall / bare_wall:.2f}; "
            f"CPU {cpu:.3f} s, ratio {cpu / bare_cpu:.2f}  "
            f"({', '.join(f'{w:.2f}' for w, _ in taken)})"
        )
    print("target: a ratio of at most 1.5 for loa say")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
