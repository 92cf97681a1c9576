"""``hotfix dashboard``: a read-only web page over the store, live through server-sent events.

Why Starlette on uvicorn: the HTTP layer (routing, header parsing, HEAD, cookies, streaming
responses, client disconnects, graceful shutdown) is the part a hand-written
``http.server`` handler gets subtly wrong and no one here wants to maintain. Starlette is small
(pure Python, one dependency of its own, ``anyio``), typed, and well kept as the base of
FastAPI; uvicorn is its reference ASGI server, installed without the ``[standard]`` extras
(only ``h11`` and ``click`` come with it). Both are imported only here, when the command
runs: no other ``hotfix`` command loads them.

The change signal: on PostgreSQL, ``LISTEN`` on the channel every writing transaction of the
store notifies (``store.notify``; ``dashboard.listen``), so a commit from any process or
machine wakes the stream without a query; a burst is announced as one change, at most once
per ``interval`` (default 1s, never under 0.2s). Without LISTEN (another driver, a
connection lost) a fingerprint of the hotfix rows (id, last journal sequence, last change,
lease) is polled at that rate instead. On SQLite, ``PRAGMA data_version`` on a read-only
connection of its own — it changes whenever another connection commits — polled once per
``interval``. One watcher thread serves every client: the store sees the same load for one
watcher or fifty (``dashboard.watch``). It wakes the event streams through the server's
event loop (``call_soon_threadsafe``), so a waiting stream holds no thread.

Safe by default: bound to 127.0.0.1 unless a host is given; on any other address a bearer token
is required (``Authorization: Bearer``, or once as ``/login?token=`` which sets an HttpOnly,
SameSite=Strict cookie). Every response carries a strict Content-Security-Policy (script and
styles only from the page's own origin, as files: no inline script), ``nosniff``,
``frame-ancestors 'none'`` and ``no-store``. A chart (``/charts/<hotfix>/<chart>.svg``, an
SVG image drawn by pygal) carries its own policy instead: its own ``<style>`` and nothing
else (no script at all), and may be kept for five minutes — its URL names the journal
version it shows. Nothing here writes to the store.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.dashboard import page
from hotfix_fsm.dashboard.watch import Watcher
from hotfix_fsm.errors import NotFound
from hotfix_fsm.log import get_logger
from hotfix_fsm.reporting.pictures import SVG_CSP, SVG_MEDIA_TYPE

log = get_logger("hotfix_fsm.dashboard")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COOKIE = "hotfix_dashboard_token"
KEEPALIVE = 15.0
MAX_STREAMS = 64


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine ("" and 0.0.0.0 answer every network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the server ------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# A chart is an SVG document shown by <img>: its own CSP allows its own <style> (pygal's
# CSS) and nothing else, and the browser may keep it (its URL names its version).
CHART_HEADERS = {
    "Content-Security-Policy": SVG_CSP,
    "Cache-Control": "private, max-age=300",
}
READ_METHODS = ("GET", "HEAD")
GRACE = 5.0  # seconds a stop waits for open requests before closing them


class Dashboard:
    """The served dashboard: ``start()`` returns its URL, ``stop()`` ends it."""

    def __init__(
        self,
        store: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        interval: float = 1.0,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ValueError("a dashboard on a non-loopback address needs a token")
        if token:
            # Request lines carry it (/login?token=): masked in every log, whoever built us.
            register_secret(token)
        self.store = store
        self.host = host
        self.token = token
        self.watcher = Watcher(store, interval=interval)
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.drawn = page.DrawnCharts()
        # Bound here, as before: a taken port is an OSError the command explains at once.
        self._socket = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
        config = uvicorn.Config(
            application(self),
            log_config=None,  # our structlog logger says what happened (redacted)
            access_log=False,
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=int(GRACE),
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="dashboard-http", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: set[asyncio.Event] = set()
        self.url = ""

    def _serve(self) -> None:
        self._server.run(sockets=[self._socket])

    def start(self) -> str:
        self.watcher.subscribe(self._wake_streams)
        self.watcher.start()
        self._thread.start()
        # Serving once uvicorn says so (or it ended): the socket already accepts connections.
        deadline = time.monotonic() + 60.0
        while not self._server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        host, port = self._socket.getsockname()[:2]
        name = str(host)
        shown = f"[{name}]" if ":" in name else name
        self.url = f"http://{shown}:{port}"
        return self.url

    def serve_forever(self) -> None:
        """Block until interrupted (the command's way)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=1.0)
        finally:
            self.stop()

    def stop(self) -> None:
        self.watcher.stop()  # wakes every stream, which then ends
        self._server.should_exit = True
        if self._thread.ident is not None:
            self._thread.join(timeout=GRACE + 10.0)
        self._socket.close()

    def _wake_streams(self) -> None:
        """From the watcher's thread: set every waiting stream's event, in the loop's thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set_waiting)

    def _set_waiting(self) -> None:
        for event in self._waiting:
            event.set()

    def authorized(self, headers: Any, cookie_token: str | None) -> bool:
        if not self.token:
            return True
        given = ""
        auth = str(headers.get("Authorization") or "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif cookie_token:
            given = cookie_token
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    async def changes(self) -> AsyncIterator[bytes]:
        """The event stream: a ``change`` per new version, a comment every ``KEEPALIVE``."""
        self._loop = asyncio.get_running_loop()
        event = asyncio.Event()
        self._waiting.add(event)
        try:
            seen = self.watcher.version
            yield b"retry: 3000\n\n"
            while not self.watcher.stopped:
                event.clear()
                version = self.watcher.version
                if version != seen:
                    seen = version
                    yield f"event: change\ndata: {version}\n\n".encode()
                    continue
                try:
                    await asyncio.wait_for(event.wait(), KEEPALIVE)
                except TimeoutError:
                    yield b": keep-alive\n\n"
        finally:
            self._waiting.discard(event)


def _cookie(headers: Any) -> str | None:
    raw = str(headers.get("Cookie") or "")
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _text_page(status: int, title: str, text: str) -> HTMLResponse:
    body = f"<h1>{page._e(title)}</h1><p>{page._e(text)}</p>"
    return HTMLResponse(page.document(title, body, live=False), status_code=status)


class SecurityHeaders:
    """Every response, whoever made it (a route, the guard, Starlette itself), carries them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers", [])
                wanted = dict(SECURITY_HEADERS)
                if any(
                    name.lower() == b"content-type" and value.startswith(SVG_MEDIA_TYPE.encode())
                    for name, value in given
                ):
                    wanted.update(CHART_HEADERS)
                # Spelled as the standards spell them (ASGI names are lower case; clients
                # must not care, but the page's readers and scripts may).
                ours = {name.lower().encode("latin-1") for name in wanted}
                message["headers"] = [
                    (name, value) for name, value in given if name.lower() not in ours
                ] + [(n.encode("latin-1"), v.encode("latin-1")) for n, v in wanted.items()]
                log.debug(
                    "dashboard_request",
                    request=redact(f"{scope['method']} {_target(scope)} {message['status']}")[:200],
                )
            await send(message)

        await self.app(scope, receive, send_secured)


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return str(scope["path"]) + (f"?{query}" if query else "")


class ReadOnlyBearerGuard:
    """Only reads; off loopback, only with the token (a header, or the cookie ``/login`` set)."""

    def __init__(self, app: ASGIApp, dashboard: Dashboard) -> None:
        self.app = app
        self.dashboard = dashboard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self._refusal(scope)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] not in READ_METHODS:
            return _text_page(405, "read-only", "this dashboard only reads the store")
        token = self.dashboard.token
        headers = Headers(scope=scope)
        if scope["path"] == "/login" and token:
            query = scope.get("query_string", b"").decode("latin-1")
            given = (parse_qs(query).get("token") or [""])[0]
            if given and hmac.compare_digest(given.encode(), token.encode()):
                login = Response(status_code=303, media_type="text/plain")
                login.headers["Location"] = "/"
                login.headers["Set-Cookie"] = f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/"
                return login
        if self.dashboard.authorized(headers, _cookie(headers)):
            return None
        return PlainTextResponse(
            "a bearer token is required (Authorization: Bearer <token>)\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="hotfix dashboard"'},
        )


def _rendered(render: Callable[[], str], path: str, media_type: str = "text/html") -> Response:
    """A page (or a chart), or a short page saying what went wrong: never a traceback."""
    try:
        return Response(render(), media_type=media_type)
    except NotFound as exc:
        return _text_page(404, "not found", exc.message)
    except Exception as exc:
        log.warning("dashboard_error", path=redact(path)[:200], error=redact(str(exc))[:300])
        return _text_page(
            500, "the store could not be read", "try again; the server log has details"
        )


class EventStream(StreamingResponse):
    """The change stream; it gives its place back however it ends (the client gone too)."""

    def __init__(self, dashboard: Dashboard) -> None:
        super().__init__(dashboard.changes(), media_type="text/event-stream; charset=utf-8")
        self._streams = dashboard.streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._streams.release()


def application(dash: Dashboard) -> Starlette:
    """The ASGI application: the routes, behind the guard and the security headers."""
    # Sync routes read the store in Starlette's thread pool; the stream waits in the loop.

    def overview(request: Request) -> Response:
        return _rendered(lambda: page.overview(dash.store), request.url.path)

    def detail(request: Request) -> Response:
        hotfix_id = str(request.path_params["hotfix_id"])
        return _rendered(lambda: page.detail(dash.store, hotfix_id), request.url.path)

    def chart(request: Request) -> Response:
        hotfix_id = str(request.path_params["hotfix_id"])
        key = str(request.path_params["key"])
        return _rendered(
            lambda: page.chart(dash.store, hotfix_id, key, drawn=dash.drawn),
            request.url.path,
            SVG_MEDIA_TYPE,
        )

    def style(request: Request) -> Response:
        return Response(page.CSS, media_type="text/css; charset=utf-8")

    def script(request: Request) -> Response:
        return Response(page.SCRIPT, media_type="text/javascript; charset=utf-8")

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def events(request: Request) -> Response:
        if not dash.streams.acquire(blocking=False):
            return _text_page(503, "too many watchers", "close a tab and reload")
        return EventStream(dash)

    async def not_found(request: Request, exc: Exception) -> Response:
        return _text_page(404, "not found", f"no page {request.url.path[:100]}")

    app = Starlette(
        routes=[
            Route("/", overview),
            Route("/hotfix/{hotfix_id:path}", detail),
            Route(page.CHARTS_PATH + "/{hotfix_id:path}/{key}.svg", chart),
            Route(page.STYLE_PATH, style),
            Route(page.SCRIPT_PATH, script),
            Route("/events", events),
            Route("/healthz", healthz),
        ],
        exception_handlers={404: not_found},
    )
    app.add_middleware(ReadOnlyBearerGuard, dashboard=dash)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so every response has them
    return app


__all__ = ["CSP", "Dashboard", "Watcher", "application", "is_loopback"]
