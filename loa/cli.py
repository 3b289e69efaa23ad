"""The `loa` command: wires audio, scheduler and web for each process."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from audio.normalize import normalize_line
from audio.render import ENGINE_CHAINS, Renderer, RenderError, default_engines
from audio.tts import TtsError
from scheduler.errors import LoaError
from scheduler.settings import Settings, SettingsError, load_settings


class CliError(click.ClickException):
    exit_code = 2


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from exc


def _open(*, migrate: bool = False) -> Any:
    """The Loa context of a command. Only `serve`, `web`, `scheduler` and `db upgrade`
    change the schema; the others refuse an old one with the command that updates it."""
    from scheduler.context import build_loa
    from scheduler.db import SchemaError

    try:
        return build_loa(_settings(), migrate_schema=migrate)
    except SchemaError as exc:
        raise CliError(str(exc)) from exc


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    for noisy in ("alembic", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Loa: spoken bulletins for commune loudspeaker networks."""
    _logging(verbose)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Seed the Triệu Sơn demo district if empty.")
@click.option("--virtual-speakers", is_flag=True, help="Play on in-process virtual speakers.")
def serve(host: str, port: int, demo: bool, virtual_speakers: bool) -> None:
    """Panel, API and scheduler in one process."""
    from loa.serve import serve as run

    run(_open(migrate=True), host, port, demo, virtual_speakers)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def web(host: str, port: int) -> None:
    """The panel and JSON API alone (run `loa scheduler` beside it)."""
    from loa.serve import serve_web

    serve_web(_open(migrate=True), host, port)


@main.command()
@click.option("--virtual-speakers", is_flag=True, help="Play on in-process virtual speakers.")
def scheduler(virtual_speakers: bool) -> None:
    """Planning, dispatch and endpoint drivers alone (beside `loa web`)."""
    from loa.serve import serve_scheduler

    serve_scheduler(_open(migrate=True), virtual_speakers)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to this version of Loa (one process at a time)."""
    from scheduler.db import make_engine, migrate, schema_versions

    engine = make_engine(_settings().database_url)
    try:
        before, head = schema_versions(engine)
        migrate(engine)
    finally:
        engine.dispose()
    click.echo(f"schema: {before or 'empty'} -> {head}" if before != head else f"schema: {head}")


@main.command("plan")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="Local day (today).")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 62))
@click.option("--commune", default=None, help="Commune code.")
def plan_cmd(start: Any, days: int, commune: str | None) -> None:
    """Each commune's queue per slot in play order, one line per item, overflows marked."""
    from datetime import datetime, timedelta

    from scheduler import areas, planning

    loa = _open()
    tz = loa.settings.timezone
    try:
        first = datetime.combine(start.date(), datetime.min.time(), tz) if start else None
        first = first or planning.local_midnight(loa.now(), tz)
        with loa.transaction() as session:
            commune_id = areas.commune_by_code(session, commune).id if commune else None
            rows = planning.plan(session, first, first + timedelta(days=days), commune_id)
    except LoaError as exc:
        raise CliError(exc.detail) from exc
    finally:
        loa.close()
    from web.i18n import catalog

    for line in planning.plan_lines(rows, tz, lambda w: catalog("vi").get(w, w)):
        click.echo(line)


@main.command()
@click.option(
    "--server",
    envvar="LOA_SERVER",
    required=True,
    help="Loa server URL, e.g. http://127.0.0.1:8080 (or LOA_SERVER).",
)
@click.option(
    "--token", envvar="LOA_TOKEN", required=True,
    help="The endpoint's token (or LOA_TOKEN, which keeps it out of the process list).",
)  # fmt: skip
@click.option("--cache", type=click.Path(path_type=Path), help="Cache directory.")
@click.option("--sink", type=click.Path(path_type=Path), help="Play into files in DIR.")
def agent(server: str, token: str, cache: Path | None, sink: Path | None) -> None:
    """The reference loudspeaker agent."""
    from audio.playout import file_sink_output, sound_card_output
    from loa.agent import Agent, AgentClient

    cache_dir = cache or _settings().data_dir / "agent"
    output = file_sink_output(sink) if sink else sound_card_output()
    runner = Agent(AgentClient(server, token), cache_dir, output)

    def _stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    logging.getLogger("loa.agent").info("agent for %s, cache %s", server, cache_dir)
    sys.exit(runner.run())


def _centre_lexicon(settings: Settings) -> dict[str, str] | None:
    """The centre's own words (the panel's Từ điển) when the data directory has a migrated
    database; None, creating and migrating nothing, when it has not."""
    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    # Imported only now: sqlalchemy and alembic take a second, more than a whole render.
    from sqlalchemy.exc import SQLAlchemyError

    from scheduler import lexicon
    from scheduler.db import make_engine, make_session_factory

    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return lexicon.as_mapping(session) or None
    except SQLAlchemyError:
        return None  # no schema yet, or no database to reach
    finally:
        engine.dispose()


@main.command("normalize")
def normalize_cmd() -> None:
    """Read Vietnamese text on stdin, write its spoken form line for line (with the
    centre's lexicon when the data directory has a database)."""
    try:
        words = _centre_lexicon(load_settings())
    except SettingsError:
        words = None
    for line in sys.stdin:
        click.echo(normalize_line(line.rstrip("\n"), words))


@main.command()
@click.option("--engine", type=click.Choice(list(ENGINE_CHAINS)), default=None)
@click.option("--voice", default="vi", show_default=True)
@click.option("--speed", default=1.0, show_default=True, type=float)
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path))
@click.option("--title", default="Loa", help="ID3 title of the MP3.")
@click.argument("text")
def say(engine: str | None, voice: str, speed: float, out: Path, title: str, text: str) -> None:
    """Render TEXT (or '-' for stdin) to a mastered MP3."""
    # Before numpy is imported: its OpenBLAS would start a pool of threads that spin on
    # the cores espeak-ng needs meanwhile (0.08 s of CPU); mastering has no use for it.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    settings = _settings()
    if text == "-":
        text = sys.stdin.read()
    renderer = Renderer(
        settings.audio_dir,
        default_engines(settings.gtts_timeout, settings.piper_model, online=settings.online_speech),
        max_chars=settings.max_chars,
        pause_ms=settings.paragraph_pause_ms,
    )
    try:
        speech = renderer.render(
            text,
            title=title,
            engine=engine or settings.tts_engine,
            voice=voice,
            speed=speed,
            lexicon=_centre_lexicon(settings),
        )
    except (RenderError, TtsError) as exc:
        raise CliError(str(exc)) from exc
    partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # then renamed: never half
    shutil.copyfile(speech.path, partial)  # a new file: the user's umask sets its mode
    partial.replace(out)
    note = f" (fell back: {speech.fallback_reason})" if speech.fallback_reason else ""
    click.echo(
        f"{out}: {speech.duration_seconds:.1f} s, {speech.loudness_lufs:.1f} LUFS, "
        f"true peak {speech.true_peak_dbtp:.1f} dBTP, engine {speech.engine}{note}",
        err=True,
    )
    # The file is written: skip the interpreter's teardown of numpy, pydub and the rest
    # (0.04-0.15 s of a 1 s command). Only as the process itself, not in a test's runner.
    if sys.stdout is sys.__stdout__ and sys.stderr is sys.__stderr__:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(0)


@main.command("verify")
@click.option("--expect", default=None, help="A head printed earlier (in a report).")
def verify(expect: str | None) -> None:
    """Check the as-run log's hash chain: exit 0 when intact, 1 naming the first broken
    record. Rows written since the scheduler last sealed are sealed first."""
    from scheduler import chain

    loa = _open()
    try:
        chain.seal_all(loa.transaction)
        with loa.transaction() as session:
            verdict = chain.verify(session, expect)
    finally:
        loa.close()
    if not verdict.ok:
        click.echo(f"BROKEN: {verdict.problem}", err=True)
        sys.exit(1)
    click.echo(f"intact: {verdict.sealed} records, head {verdict.head}")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--name", required=True)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "centre", "approver", "operator", "reporter"]),
)
@click.option("--commune", default=None, help="Commune code (operators).")
def token_create(name: str, role: str, commune: str | None) -> None:
    """Print a new API token."""
    from scheduler import areas
    from scheduler.auth import create_token, parse_role

    loa = _open()
    try:
        with loa.transaction() as session:
            area = areas.commune_by_code(session, commune) if commune else None
            click.echo(create_token(session, name, parse_role(role), area, loa.now()))
    except LoaError as exc:
        raise CliError(exc.detail) from exc
    finally:
        loa.close()


@token.command("list")
def token_list() -> None:
    """List the API tokens (never the tokens themselves)."""
    from scheduler.auth import tokens

    loa = _open()
    try:
        with loa.transaction() as session:
            for t in tokens(session):
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M} UTC" if t.revoked_at else "active"
                click.echo(f"{t.id}\t{t.name}\t{t.role}\t{state}")
    finally:
        loa.close()


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke an API token by its id (from `loa token list`): it stops working at once."""
    from scheduler.auth import revoke_token

    loa = _open()
    try:
        with loa.transaction() as session:
            revoked = revoke_token(session, token_id, loa.now())
            click.echo(f"revoked {revoked.id} ({revoked.name})")
    except LoaError as exc:
        raise CliError(exc.detail) from exc
    finally:
        loa.close()


@main.command("export")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx", "docx"]), default="csv", show_default=True
)
@click.option("--commune", default=None, help="Commune code (default: all).")
@click.option("--topic", default=None, help="Only bulletins of this topic, e.g. CCHC.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None, help="Default LOA_LANGUAGE.")
@click.option("-o", "--out", "--output", "out", required=True, type=click.Path(path_type=Path))
def export(
    start: Any, end: Any, fmt: str, commune: str | None, topic: str | None, lang: str | None,
    out: Path,
) -> None:  # fmt: skip
    """Export the as-run log of a period (local dates, both included): the as-run table as
    CSV or XLSX, or the period's report as a DOCX (Nghị định 30/2020 layout)."""
    from scheduler import reports
    from scheduler.auth import Actor
    from scheduler.models import Role

    first: date = start.date()
    last: date = end.date()
    if last < first:
        raise CliError("--to is before --from")
    loa = _open()
    try:
        tz, now = loa.settings.timezone, loa.now()
        f = reports.period_filter(tz, reports.Period(first, last), commune, topic)
        with loa.transaction() as session:
            report = reports.build(
                session, Actor("cli", Role.REPORTER), f, tz, now,
                lang=lang or loa.settings.language, export=fmt,
            )  # fmt: skip
        data = reports.export_bytes(report, fmt, now.astimezone(tz).date(), loa.settings.report)
        out.write_bytes(data)
    except LoaError as exc:
        raise CliError(exc.detail) from exc
    finally:
        loa.close()
    click.echo(f"{out}: {len(report.rows)} broadcasts", err=True)
