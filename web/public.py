"""Public pages (no login): what a commune aired lately, playable, and its podcast feed."""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, abort, render_template, request, send_file, url_for

from scheduler import public
from scheduler.errors import LoaError
from scheduler.models import Area
from web.common import loa, local

bp = Blueprint("public", __name__)


def _aired(code: str) -> tuple[Area, list[public.Aired]]:
    ctx = loa()
    with ctx.transaction() as session:
        try:
            return public.aired(session, code, ctx.now())
        except LoaError:
            abort(404)


def _absolute(path: str) -> str:
    base = loa().settings.public_url or request.url_root.rstrip("/")
    return base + path


@bp.get("/c/<code>")
def commune(code: str) -> str:
    area, items = _aired(code)
    rows = [
        {
            "when": local(i.aired_at, "%d/%m/%Y %H:%M"),
            "title": i.title,
            "topic": i.topic,
            "length": "{}:{:02d}".format(*divmod(round(i.duration_seconds), 60)),  # 1:35
            "audio": url_for("public.audio", code=code, broadcast_id=i.broadcast_id),
        }
        for i in items
    ]
    return render_template(
        "public_commune.html", commune=area, rows=rows, feed=url_for("public.podcast", code=code)
    )


@bp.get("/c/<code>/audio/<int:broadcast_id>.mp3")
def audio(code: str, broadcast_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        try:
            path = public.aired_audio(
                session, code, broadcast_id, ctx.now(), ctx.settings.audio_dir
            )
        except LoaError:
            abort(404)
    return send_file(path, mimetype="audio/mpeg", conditional=True, max_age=86400)


@bp.get("/c/<code>/podcast.xml")
def podcast(code: str) -> Response:
    """RSS 2.0, one item with an MP3 enclosure per broadcast the commune aired."""
    area, items = _aired(code)
    store = loa().settings.audio_dir
    rss = ET.Element("rss", version="2.0")
    channel = ET.SubElement(rss, "channel")
    for tag, value in (
        ("title", f"Loa truyền thanh {area.name}"),
        ("link", _absolute(url_for("public.commune", code=code))),
        ("description", f"Các bản tin {area.name} đã phát trên loa truyền thanh"),
        ("language", "vi"),
    ):
        ET.SubElement(channel, tag).text = value
    for i in items:
        item = ET.SubElement(channel, "item")
        ET.SubElement(item, "title").text = i.title
        ET.SubElement(item, "description").text = i.text or i.title
        ET.SubElement(item, "pubDate").text = email.utils.format_datetime(i.aired_at)
        ET.SubElement(item, "guid", isPermaLink="false").text = f"loa-broadcast-{i.broadcast_id}"
        size = (store / i.path).stat().st_size if (store / i.path).is_file() else 0
        ET.SubElement(
            item,
            "enclosure",
            url=_absolute(url_for("public.audio", code=code, broadcast_id=i.broadcast_id)),
            length=str(size),
            type="audio/mpeg",
        )
    body = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return Response(body, mimetype="application/rss+xml")
