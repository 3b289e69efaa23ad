"""Normalizer quality and speed: Loa's normalizer against vinorm on the same sentences.

    .venv/bin/pip install vinorm==2.0.7      # once; not a Loa dependency
    .venv/bin/python scripts/bench/normalize_quality.py [--show-errors]

Scores every sentence of the sets below (tests/data/*.tsv): sentence accuracy and word
error rate against the announcer's reading, after folding case, punctuation and the
accepted variants (tư/bốn after mươi, lẻ/linh, ngàn/nghìn, kí/ki, and "trên"/"một" for
"per": đồng/người, tạ/ha).
The bulletin-domain sets (weather, storms and floods, health, ...) are also scored per
domain. --show-errors lists the misses of the dev sets only; a held-out set's misses are
listed when it is asked for by name (--set), so they are not tuned on by accident.
Speed is the mean time per sentence over many runs, measured in this same process.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from machine import describe

from audio.normalize import normalize_line

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
VARIANTS = [
    (r"\bmươi tư\b", "mươi bốn"),
    (r"\blẻ\b", "linh"),
    (r"\bngàn\b", "nghìn"),
    (r"\bkí\b", "ki"),
    (r"\b(đồng|tạ|tấn|lần|mét|gam|ta) trên\b", r"\1 một"),  # per unit: both are said
]


def canon(text: str) -> str:
    text = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    for pattern, replacement in VARIANTS:
        text = re.sub(pattern, replacement, text)
    return text


def word_errors(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


SETS = {
    "dev": ("normalize-examples.tsv", "normalize-eval.tsv"),  # what the normalizer was tuned on
    "heldout": ("normalize-heldout.tsv",),  # written before its first run, never tuned on
    # Commune bulletins beyond administration (issue 9), with a "domain" column.
    "domains-dev": ("normalize-domains.tsv",),
    "domains-heldout": ("normalize-domains-heldout.tsv",),  # a third, never tuned on
}

Row = tuple[str, str, str]  # source, expected, domain


def load(names: tuple[str, ...]) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        with (DATA / name).open(encoding="utf-8") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            rows += [(r["source"], r["expected"], r.get("domain") or "") for r in reader]
    return rows


def score(name: str, system: Callable[[str], str], rows: list[Row], show: bool) -> None:
    right = errors = words = 0
    by_domain: dict[str, list[int]] = {}
    started = time.perf_counter()
    outputs = [system(source) for source, _, _ in rows]
    per_sentence = (time.perf_counter() - started) / len(rows)
    for (source, expected, domain), got in zip(rows, outputs, strict=True):
        ref, hyp = canon(expected).split(), canon(got).split()
        e = word_errors(ref, hyp)
        right += e == 0
        errors += e
        words += len(ref)
        tally = by_domain.setdefault(domain, [0, 0])
        tally[0] += e == 0
        tally[1] += 1
        if e and show:
            print(f"  [{name}] {source}\n      got: {canon(got)}\n     want: {canon(expected)}")
    print(
        f"{name:10} sentences right {right}/{len(rows)} ({100 * right / len(rows):.1f} %), "
        f"word error rate {100 * errors / words:.2f} %, {per_sentence * 1000:.3f} ms/sentence"
    )
    if len(by_domain) > 1:
        print("           " + ", ".join(f"{d} {r}/{n}" for d, (r, n) in by_domain.items()))


def speed(rows: list[Row], repeat: int = 20) -> None:
    sentences = [s for s, _, _ in rows] * repeat
    started = time.perf_counter()
    for s in sentences:
        normalize_line(s)
    mean = (time.perf_counter() - started) / len(sentences)
    print(f"loa speed: {mean * 1e6:.0f} µs per sentence over {len(sentences)} sentences")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--set", choices=[*SETS, "all"], default="all")
    args = parser.parse_args()
    print(describe())
    try:
        from vinorm import TTSnorm  # type: ignore[import-not-found]
    except ImportError:
        TTSnorm = None
        print("vinorm is not installed: .venv/bin/pip install vinorm==2.0.7")
    normalize_line("warm up 1")
    for name, files in SETS.items():
        if args.set not in (name, "all"):
            continue
        rows = load(files)
        print(f"-- {name}: {len(rows)} sentences")
        show = args.show_errors and ("heldout" not in name or args.set == name)
        score("loa", normalize_line, rows, show)
        if TTSnorm is not None:
            score("vinorm", _quiet(TTSnorm), rows, show)
    speed([row for files in SETS.values() for row in load(files)])


def _quiet(system: Callable[[str], str]) -> Callable[[str], str]:
    """vinorm's binary prints debug lines ('Roman ...'); send them away."""

    def call(text: str) -> str:
        sys.stdout.flush()
        saved = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                return system(text)
            finally:
                os.dup2(saved, 2)
                os.close(saved)

    return call


if __name__ == "__main__":
    main()
