"""The HTTP front: one event loop holds idle long-polls, a thread pool runs the Flask app.

An agent's `GET /agent/schedule?version=V&wait=S` spends nearly all its life waiting.
Held by a thread (as a threaded WSGI server does), a thousand agents would need a
thousand threads; here the wait is an asyncio future woken by the ChangeNotifier. A
district-wide bulletin wakes every agent at once, so the answers wanted in one turn of
the loop are built together (two queries for all of them, in one worker thread) and
sent from the loop. Everything else goes straight to the Flask app through a2wsgi.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from a2wsgi import WSGIMiddleware
from flask import Flask
from pydantic import ValidationError
from sqlalchemy import select

from scheduler import broadcasts as bc
from scheduler.auth import token_hash
from scheduler.context import Loa
from scheduler.errors import InvalidInput, LoaError
from scheduler.health import Beat
from scheduler.models import Endpoint
from scheduler.schedules import parse_beat
from web.api.common import STATUS_BY_ERROR
from web.api.endpoints import LONG_POLL_MAX_SECONDS, ReportsIn, schedule_documents

log = logging.getLogger(__name__)

SCHEDULE_PATH = "/api/v1/agent/schedule"
REPORTS_PATH = "/api/v1/agent/reports"
MAX_BODY = 4 * 1024 * 1024  # the Flask app's limit too
GONE = "the token is unknown or revoked"
TOKEN_CACHE_SECONDS = 60.0
# A schedule document is rebuilt at least this often even when nothing changed, so items
# entering the horizon and statuses moved by reports reach the agent.
DOC_TTL_SECONDS = 300.0  # a revoked token may still wait this long; its answer is refused

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class LongPollFront:
    """ASGI app: long-polls are held and answered on the event loop, the rest goes to
    the WSGI app. Anything unusual (no version, a bad parameter, an unknown token) also
    goes to the WSGI view, which answers it or says what is wrong."""

    def __init__(self, loa: Loa, app: Flask, workers: int) -> None:
        self.loa = loa
        self.wsgi = WSGIMiddleware(app, workers=workers)  # type: ignore[arg-type]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting: dict[int, set[asyncio.Future[None]]] = {}
        self._tokens: dict[str, tuple[int | None, float]] = {}
        # Answers wanted in this turn of the loop, built together in one worker call.
        self._wanted: dict[int, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._prefix = ""
        # The last schedule built for each endpoint: (version, fresh until, document).
        self._docs: dict[int, tuple[str, float, dict[str, Any]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if (
            scope["type"] == "http"
            and scope["path"] == SCHEDULE_PATH
            and await self._long_poll(scope, receive, send)
        ):
            return
        if scope["type"] == "http" and scope["path"] == REPORTS_PATH:
            body = await _body(receive)
            if body is not None and len(body) > MAX_BODY:
                too_large = {"error": "request_entity_too_large", "detail": "at most 4 MB"}
                await _json(send, 413, too_large)
                return
            if body is None or await self._reports(scope, body, send):
                return
            receive = _replay(body)  # anything unusual: the view answers it
        await self.wsgi(scope, receive, send)  # type: ignore[arg-type]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.loop = asyncio.get_running_loop()
                self.loa.notifier.listen(self._changed)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.loa.notifier.unlisten(self._changed)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- long-poll -----------------------------------------------------------------------

    async def _long_poll(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Wait for a change (or the wait's end), then answer; False: let the view answer."""
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        seen = params.get("version")
        try:
            wait = min(float(params.get("wait", "0")), LONG_POLL_MAX_SECONDS)
            parse_beat(params, self.loa.now())
        except (ValueError, InvalidInput):
            return False
        if not seen or wait <= 0 or self.loop is None:
            return False
        endpoint_id = await self._endpoint_id(scope)
        if endpoint_id is None:
            return False
        first = await receive()  # a GET has no body: this is the whole request
        if first["type"] == "http.disconnect":
            return True
        if self.loa.notifier.version(endpoint_id) == seen:
            future: asyncio.Future[None] = self.loop.create_future()
            self.waiting.setdefault(endpoint_id, set()).add(future)
            hangup = asyncio.ensure_future(receive())
            try:
                await asyncio.wait((future, hangup), timeout=wait, return_when="FIRST_COMPLETED")
                if hangup.done():
                    return True  # the agent hung up; nobody to answer
            finally:
                hangup.cancel()
                futures = self.waiting.get(endpoint_id)
                if futures is not None:
                    futures.discard(future)
                    if not futures:
                        del self.waiting[endpoint_id]
        self.loa.heartbeats.beat(endpoint_id, parse_beat(params, self.loa.now()))
        self._prefix = scope.get("root_path", "")
        doc = await self._schedule(endpoint_id)
        if doc is None:  # switched off while it waited
            await _json(send, 401, {"error": "invalid_token", "detail": GONE})
        else:
            await _json(send, 200, doc)
        return True

    async def _schedule(self, endpoint_id: int) -> dict[str, Any] | None:
        """This endpoint's schedule: kept from the last answer while its version holds (an
        idle agent's poll that timed out costs no query), else built with every other one
        wanted in the same turn."""
        cached = self._docs.get(endpoint_id)
        if (
            cached is not None
            and cached[0] == self.loa.notifier.version(endpoint_id)
            and cached[1] > time.monotonic()
        ):
            return _refreshed(cached[2], self.loa.now())
        assert self.loop is not None
        future: asyncio.Future[dict[str, Any] | None] = self.loop.create_future()
        if not self._wanted:
            self.loop.call_soon(lambda: asyncio.ensure_future(self._build()))
        self._wanted.setdefault(endpoint_id, []).append(future)
        return await future

    async def _build(self) -> None:
        wanted, self._wanted = self._wanted, {}
        try:
            docs = await asyncio.to_thread(schedule_documents, self.loa, list(wanted), self._prefix)
        except Exception as exc:  # every waiting agent learns of it, none hangs
            for futures in wanted.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        fresh_until = time.monotonic() + DOC_TTL_SECONDS
        if len(self._docs) > 2 * len(docs) + 10_000:  # forget agents gone for good
            now = time.monotonic()
            self._docs = {k: v for k, v in self._docs.items() if v[1] > now}
        for endpoint_id, doc in docs.items():
            self._docs[endpoint_id] = (doc["version"], fresh_until, doc)
        for endpoint_id, futures in wanted.items():
            for future in futures:
                if not future.done():
                    future.set_result(docs.get(endpoint_id))

    async def _reports(self, scope: Scope, body: bytes, send: Send) -> bool:
        """An endpoint's proof of play, handed to the report writer from the loop (no pool
        thread, no database read for the token); False: let the view answer."""
        if scope["method"] != "POST":
            return False
        endpoint_id = await self._endpoint_id(scope)
        if endpoint_id is None:
            return False
        try:
            data = ReportsIn.model_validate_json(body)
        except ValidationError:
            return False  # the view explains what is wrong
        reports = [bc.PlayReport(**r.model_dump()) for r in data.reports]
        try:
            changed = await asyncio.wrap_future(self.loa.reports.enqueue(endpoint_id, reports))
        except LoaError as exc:
            status = STATUS_BY_ERROR.get(type(exc), 409)
            await _json(send, status, {"error": exc.code, "detail": exc.detail})
            return True
        self.loa.heartbeats.beat(endpoint_id, Beat(self.loa.now()))
        await _json(send, 200, {"received": len(reports), "changed": changed})
        return True

    def _changed(self, moved: list[tuple[int, str]]) -> None:
        """From any thread: hand the news to the event loop (one wake-up per batch)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake, [endpoint_id for endpoint_id, _ in moved])

    def _wake(self, endpoint_ids: list[int]) -> None:
        for endpoint_id in endpoint_ids:
            for future in self.waiting.pop(endpoint_id, ()):
                if not future.done():
                    future.set_result(None)

    async def _endpoint_id(self, scope: Scope) -> int | None:
        """The active endpoint a bearer token belongs to (cached for a minute)."""
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        hashed = token_hash(token.strip())
        cached = self._tokens.get(hashed)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        endpoint_id = await asyncio.to_thread(self._lookup, hashed)
        if len(self._tokens) > 200_000:
            self._tokens.clear()
        self._tokens[hashed] = (endpoint_id, time.monotonic() + TOKEN_CACHE_SECONDS)
        return endpoint_id

    def _lookup(self, hashed: str) -> int | None:
        with self.loa.transaction() as session:
            return session.scalar(
                select(Endpoint.id).where(Endpoint.token_hash == hashed, Endpoint.active.is_(True))
            )


def _refreshed(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A kept document as of `now`: the server's time, items past their latest start gone."""
    items = [i for i in doc["items"] if datetime.fromisoformat(i["play_until"]) > now]
    return {**doc, "server_time": now.isoformat(), "items": items}


async def _body(receive: Receive) -> bytes | None:
    """The whole request body (at most MAX_BODY: more is the view's to refuse);
    None when the client hung up."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body") or size > MAX_BODY:
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _json(send: Send, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def make_server(loa: Loa, app: Flask, host: str, port: int) -> uvicorn.Server:
    """A uvicorn server for the front; `run()` serves until `should_exit` is set."""
    config = uvicorn.Config(
        LongPollFront(loa, app, workers=loa.settings.web_threads),
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
        backlog=4096,
        timeout_keep_alive=75,  # agents poll again at once; keep their connection
        timeout_graceful_shutdown=3,  # waiting long-polls need not hold a stop
        server_header=False,
    )
    return uvicorn.Server(config)


def serve_in_thread(server: uvicorn.Server) -> threading.Thread:
    """Run a server in a daemon thread (tests, embedded use) and wait until it listens."""
    thread = threading.Thread(target=server.run, name="loa-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.01)
    return thread
