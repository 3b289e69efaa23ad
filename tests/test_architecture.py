"""Dependencies point one way (audio <- scheduler <- web) and nothing starts at import."""

import subprocess
import sys

import pytest

PACKAGES = ("audio", "scheduler", "web", "loa")


def imported_after(modules: list[str]) -> set[str]:
    code = (
        "import sys, threading\n"
        f"for m in {modules!r}: __import__(m)\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in out.stdout.split()}


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (["audio.normalize", "audio.tts", "audio.render", "audio.playout", "audio.master"],
         {"scheduler", "web", "loa", "flask", "sqlalchemy"}),
        (["scheduler.service", "scheduler.dispatch", "scheduler.drivers.virtual", "scheduler.asrun",
          "scheduler.demo"], {"web", "loa", "flask"}),
        (["loa.agent"], {"web", "flask", "sqlalchemy"}),
    ],
)  # fmt: skip
def test_each_layer_imports_only_the_layers_below_it(
    modules: list[str], forbidden: set[str]
) -> None:
    assert imported_after(modules) & forbidden == set()


def test_importing_everything_creates_no_app_engine_scheduler_or_thread() -> None:
    imported_after(["web", "web.api", "loa.cli", "loa.serve", "scheduler.context"])
