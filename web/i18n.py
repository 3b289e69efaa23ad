"""Panel language: Vietnamese by default, English available, with Flask-Babel.

The catalogs are gettext files, web/translations/<lang>/LC_MESSAGES/messages.po, keyed by
English text and by pseudo-keys ("error:code", "audit:create", "http-title:404", ...);
`pybabel compile -d web/translations` makes the .mo files the panel reads."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.numbers import format_decimal
from flask import Flask, current_app, g, session
from flask_babel import Babel, gettext

LANGUAGES = ("vi", "en")
TRANSLATIONS = Path(__file__).parent / "translations"


def language() -> str:
    """The session's choice, then the user's language, then LOA_LANGUAGE."""
    lang = session.get("lang") or g.get("user_language") or current_app.config["LOA_LANGUAGE"]
    return lang if lang in LANGUAGES else "vi"


def translate(text: str) -> str:
    """`text` in the panel's language; the text itself when the catalog has none."""
    return gettext(text) if text else text  # gettext("") would be the catalog's header


def error_text(code: str, detail: str) -> str:
    """A domain error in the panel's language: its code's message, else its detail."""
    key = f"error:{code}"
    said = translate(key)
    return detail if said == key else said


# English the drivers, the dispatcher and the domain write into the log (an attempt's or a
# delivery's error, a history row's reason), matched from its start, and the catalog's
# message for it (filled with the groups); the rest shows as is.
MESSAGES = tuple((re.compile(pattern), msgid) for pattern, msgid in (
    (r"the agent has not confirmed it holds the audio",
     "the agent has not confirmed it holds the audio"),
    (r"dispatcher was late", "dispatcher was late"),
    (r"no proof of play", "no proof of play"),
    (r"no end-of-play report", "no end-of-play report"),
    (r"no driver for '?(\w+)'? endpoints", "no driver for {0} endpoints"),
    (r"the (\w+) driver failed: (.*)", "the {0} driver failed: {1}"),
    (r"the audio file (.*) is missing", "the audio file {0} is missing"),
    (r"(.*) is not an ALSA device name", "{0} is not an ALSA device name"),
    (r"the address (\S+) is not an icecast mount URL",
     "the address {0} is not an icecast mount URL"),
    (r"icecast never listed this source on (\S+)", "icecast never listed this source on {0}"),
    (r"stopped before icecast listed the source on (\S+)",
     "stopped before icecast listed the source on {0}"),
    (r"cannot (?:open|play) the relay stream:? ?(.*)", "cannot open the relay stream {0}"),
    (r"the relay stream (\S+) sent nothing", "the relay stream {0} sent nothing"),
    (r"cannot start (\S+?)(:.*|$)", "cannot start {0}{1}"),
    (r"(\S+) exited with (-?\d+)(.*)", "{0} exited with {1}{2}"),
    (r"interrupted by emergency", "interrupted by emergency"),
    (r"in the quiet hours (\S+)", "in the quiet hours {0}"),
    (r"replaced by (.+)", "replaced by {0}"),
    (r"placement changed$", "placement changed"),
    (r"placement (\d+)$", "placement {0}"),  # made by a placement, in a history row
    (r"cancelled$", "cancelled"),
    (r"endpoint removed$", "endpoint removed"),
))  # fmt: skip


def message(text: str | None) -> str:
    """A message the domain wrote in English, translated when the catalog knows it."""
    if not text:
        return ""
    for pattern, msgid in MESSAGES:
        found = pattern.match(text)
        if found:
            said = translate(msgid)
            return text if said == msgid else said.format(*found.groups())
    return text


def number(value: float, digits: int = 0) -> str:
    """A number as the panel's language writes it: Vietnamese 20.000 and 28,6."""
    pattern = "#,##0." + "0" * digits if digits else "#,##0"
    return format_decimal(value, pattern, locale=language())


def seconds(value: float, digits: int = 1) -> str:
    return f"{number(value, digits)} {translate('seconds')}"


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """A compiled catalog as msgid -> text, for code outside a request (`loa plan`)."""
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.mo").open("rb") as mo:
        return {str(m.id): str(m.string) for m in read_mo(mo) if m.id and m.string}


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config["LOA_LANGUAGE"])
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    # Our own `_`: plain text, escaped by Jinja like any other value (Flask-Babel's
    # would mark every translation safe and %-format it).
    Babel(app, locale_selector=language, configure_jinja=False)
    app.jinja_env.globals.update(_=translate, language=language, message=message)
    app.jinja_env.filters["number"] = number
