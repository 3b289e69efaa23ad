#!/usr/bin/env python3
"""One-off: write web/translations/{vi,en}/LC_MESSAGES/messages.po from the Python dicts
(VI, EN, MESSAGES_VI) that web/i18n.py held before the panel moved to Flask-Babel.

    .venv/bin/python scripts/i18n_from_dicts.py [REVISION]   # default 8ddd88e
    .venv/bin/pybabel compile -d web/translations

The .po files are the source since: edit them by hand (running this again would drop every
message added after the move), then compile."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

ROOT = Path(__file__).resolve().parent.parent
WHEN = datetime(2026, 11, 27, tzinfo=UTC)
HEADER = """\
# The panel's messages, keyed by English text and by pseudo-keys (error:CODE, audit:ACTION,
# http-title:CODE, ...). Edit this file, then: pybabel compile -d web/translations"""
sys.path.insert(0, str(ROOT))

from web.i18n import MESSAGES, TRANSLATIONS  # noqa: E402


def old_dicts(revision: str) -> dict[str, Any]:
    source = subprocess.run(
        ["git", "show", f"{revision}:web/i18n.py"], cwd=ROOT, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    namespace: dict[str, Any] = {"__name__": "old_i18n"}
    exec(compile(source, "old_i18n.py", "exec"), namespace)
    return namespace


def main(revision: str = "8ddd88e") -> None:
    old = old_dicts(revision)
    vi_by_pattern = {pattern.pattern: vi for pattern, vi in old["MESSAGES_VI"]}
    logged = {msgid: vi_by_pattern[pattern.pattern] for pattern, msgid in MESSAGES}
    tables = {"vi": {**old["VI"], **logged}, "en": old["EN"]}
    msgids = list(dict.fromkeys([*old["VI"], *old["EN"], *logged]))
    for lang, table in tables.items():
        catalog = Catalog(
            locale=lang, project="Loa", version="0.1", copyright_holder="Loa's authors",
            header_comment=HEADER, msgid_bugs_address="", creation_date=WHEN,
            revision_date=WHEN, last_translator="Loa", language_team="Loa", fuzzy=False,
        )  # fmt: skip
        for msgid in msgids:  # English ones left empty: gettext then shows the msgid
            catalog.add(msgid, table.get(msgid, ""))
        path = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as po:
            write_po(po, catalog, width=100, omit_header=False)
        print(f"{path.relative_to(ROOT)}: {sum(1 for m in catalog if m.id and m.string)} "
              f"of {len(msgids)} translated")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:])
