"""The OpenAPI 3.1 document of /api/v1; request schemas come from the validating models."""

from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema


class Op(NamedTuple):
    method: str
    path: str
    summary: str
    body: str | None  # name of the request model
    status: int
    answer: str
    query: tuple[str, ...] = ()


OPERATIONS = tuple(Op(*row) for row in (
    ("get", "/communes", "List communes with their official codes", None, 200,
     "[{code, name, kind, district, province, quiet_hours}]", ()),
    ("post", "/bulletins", "Create a bulletin (draft): text to speak (BulletinIn), a relay "
     "(RelayIn, kind relay: a stream URL played for duration_seconds), or a recording "
     "(multipart: the MP3/WAV/OGG as 'file', with title, text, topic, priority)", "BulletinIn",
     201, "The bulletin {id, kind, status, audio, ...}", ()),
    ("get", "/bulletins", "List bulletins, newest first", None, 200, "[bulletin]", ()),
    ("get", "/bulletins/{id}", "One bulletin", None, 200, "The bulletin", ()),
    ("patch", "/bulletins/{id}", "Correct a bulletin; a changed text returns it to draft",
     "BulletinEditIn", 200, "The bulletin", ()),
    ("post", "/bulletins/{id}/approve", "Approve a bulletin", None, 200,
     "The bulletin with status approved", ()),
    ("post", "/bulletins/import", "A draft bulletin from a DOCX or TXT (multipart 'file')",
     None, 201, "The bulletin: the document's body, header and signature dropped", ()),
    ("post", "/bulletins/{id}/audio", "Render the bulletin's speech (and keep its voice); "
     "for a recording, multipart 'file': its new file (back to draft)",
     "AudioIn", 200,
     "{sha256, duration_seconds, engine, voice, loudness_lufs, true_peak_dbtp, url, "
     "fallback_reason}", ()),
    ("get", "/lexicon", "The centre's words for the normalizer", None, 200,
     "[{term, spoken}]", ()),
    ("post", "/lexicon", "Add a word or change how it is read", "LexiconIn", 201,
     "{term, spoken}", ()),
    ("delete", "/lexicon/{term}", "Remove a word", None, 200, "{deleted}", ()),
    ("get", "/audio/{sha256}.mp3", "Download rendered audio", None, 200, "audio/mpeg", ()),
    ("post", "/endpoints", "Register a loudspeaker endpoint; answers its token once",
     "EndpointIn", 201, "{id, commune, name, kind, token}", ()),
    ("get", "/endpoints", "List active endpoints and when they were last seen", None, 200,
     "[endpoint]", ()),
    ("delete", "/endpoints/{id}", "Remove a device: deactivated, token refused, open deliveries "
     "cancelled", None, 200, "{id, commune, name, kind, active, cancelled_deliveries}", ()),
    ("post", "/broadcasts", "Schedule an approved bulletin in communes (no `at`: now)",
     "BroadcastIn", 201, "[{id, commune, scheduled_at, status}]", ()),
    ("get", "/broadcasts", "The as-run log", None, 200,
     "[{id, commune, bulletin_id, scheduled_at, status, started_at, finished_at, "
     "lateness_seconds, confirmed_by, deliveries, ...}]",
     ("commune", "from", "to", "status", "topic")),
    ("get", "/broadcasts/{id}", "One broadcast with its deliveries and status history", None,
     200, "The broadcast", ()),
    ("post", "/broadcasts/{id}/confirm", "Operator confirmation: aired or not, with reason",
     "ConfirmIn", 200, "The broadcast", ()),
    ("post", "/broadcasts/{id}/cancel", "Cancel a broadcast not started yet", None, 200,
     "The broadcast, status cancelled", ()),
    ("post", "/slots", "A broadcast slot (khung giờ): local start, minutes, weekdays, communes",
     "SlotIn", 201, "{id, name, start, minutes, weekdays, communes}", ()),
    ("get", "/slots", "The active slots", None, 200, "[slot]", ()),
    ("delete", "/slots/{id}", "Retire a slot no broadcast is planned in any more", None, 200,
     "The slot", ()),
    ("post", "/groups", "A named group of communes", "GroupIn", 201,
     "{id, name, communes}", ()),
    ("get", "/groups", "The groups of communes", None, 200, "[group]", ()),
    ("put", "/quiet-hours", "Quiet hours (only emergencies air): local start and end, "
     "null to clear; non-emergency broadcasts planned in them are cancelled", "QuietIn", 200,
     "{communes, cancelled}", ()),
    ("post", "/placements", "Place a bulletin: once, into slots between two dates, or "
     "repeated; materialised at once", "PlacementIn", 201,
     "{id, broadcasts, overflow, quiet, planned_until}", ()),
    ("get", "/placements", "Placements, newest first", None, 200, "[placement]", ()),
    ("get", "/placements/{id}", "One placement", None, 200, "The placement", ()),
    ("put", "/placements/{id}", "Change a placement's targets, rule or priority: its "
     "broadcasts not started follow (no longer asked for: cancelled; new: made), history "
     "stays", "PlacementEditIn", 200, "The placement with {broadcasts (made now), overflow, "
     "quiet}", ()),
    ("delete", "/placements/{id}", "Stop a placement: its broadcasts not started are "
     "cancelled, history stays", None, 200, "{cancelled}", ()),
    ("get", "/plan", "Each commune's queue in play order, overflows marked", None, 200,
     "[{commune, scheduled_at, bulletin_id, placement_id, slot_id, position, status, "
     "overflow, ...}]", ("from", "to", "commune")),
    ("get", "/audit", "Who did what, newest first (administrators)", None, 200,
     "[{id, at, actor, action, target, target_id, detail}]", ("actor", "page")),
    ("get", "/reports/broadcasts.csv", "The as-run log as CSV (Vietnamese; lang=en: English)",
     None, 200, "text/csv with a UTF-8 BOM, one row per broadcast, local times "
     "dd/mm/yyyy HH:MM:SS", ("commune", "from", "to", "status", "topic", "lang")),
    ("get", "/reports/broadcasts.xlsx", "The as-run log as XLSX: one row per broadcast, and a "
     "summary sheet per commune and topic", None, 200,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     ("commune", "from", "to", "status", "topic", "lang")),
    ("get", "/reports/report.docx", "The period's report as a DOCX in the Nghị định 30/2020 "
     "layout (default: the last full half-year)", None, 200,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     ("from", "to", "commune", "topic")),
    ("get", "/agent/schedule", "Agent: upcoming deliveries (long-poll with version & wait)",
     None, 200, "{version, server_time, grace_seconds, endpoint, items}", ("version", "wait")),
    ("post", "/agent/reports", "Agent: proof of play reports (store-and-forward)", "ReportsIn",
     200, "{received, changed}", ()),
    ("post", "/alerts/cap", "A CAP 1.2 alert, the XML as body (application/cap+xml, "
     "application/xml or text/xml): Actual Alert/Update airs an emergency bulletin now in the "
     "communes its areas name; Test, Exercise, System, Draft are recorded, never aired; "
     "Cancel cancels what the referenced alerts have not started", None, 201,
     "{alert_id, bulletin_id, broadcasts, communes, unknown_areas, duplicate}; 200 when "
     "sent again, for {recorded, status} and for {cancelled, still_playing}; 400 invalid_cap, "
     "422 cap_expired or unknown_areas, 404 unknown_alert (Cancel)", ()),
))  # fmt: skip

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _operation(op: Op) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    doc: dict[str, Any] = {
        "summary": op.summary,
        "responses": {
            str(op.status): {"description": op.answer},
            "400": {"description": "Malformed request", **error},
            "401": {"description": "Missing or unknown token", **error},
            "403": {"description": "Not allowed for this token", **error},
            "404": {"description": "Unknown id", **error},
            "409": {"description": "Conflicts with the current state", **error},
            "422": {"description": "Well-formed but invalid", **error},
        },
    }
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("id", "sha256", "term")
        if "{" + name + "}" in op.path
    ]
    params += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in op.query]
    if params:
        doc["parameters"] = params
    if op.body:
        ref = {"$ref": f"#/components/schemas/{op.body}"}
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return doc


def openapi_document(bodies: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [(m, "validation") for m in bodies], ref_template="#/components/schemas/{model}"
    )
    components = dict(schemas.get("$defs", {}))
    components["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loa API",
            "version": "1",
            "description": "Schedules spoken bulletins for commune loudspeaker networks.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
