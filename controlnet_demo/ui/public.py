"""What a public server adds around gradio: who a request comes from, a bound on each request's body before it is
read, and a per-client cap on the jobs one visitor may have queued or running, so one visitor cannot fill the queue
for everyone."""

from __future__ import annotations

import ipaddress
import types

from ..errors import message
from .i18n import locale_of, translate

PROXY_HEADER = "x-forwarded-for"
LIGHT_ID = "ui"  # the concurrency id of the page's light work (widgets.LIGHT)
LIGHT_WAITING = 4  # light events of one client waiting at once (each takes milliseconds: a page has a few at most)
BUSY = (
    "You already have {n} jobs waiting or running on this server, the most one visitor may have at once: wait for "
    "them to finish (or press Stop), then try again."
)


def client_address(request, behind_proxy: bool = False) -> str:
    """The visitor's address: the connection's peer, or behind a proxy that says whom it forwards (a Hugging Face
    Space's), the last address that proxy added to X-Forwarded-For (earlier entries are the client's own words)."""
    if request is None:
        return "unknown"
    if behind_proxy:
        headers = getattr(request, "headers", None) or {}
        # every line of the header: a proxy may add its own line after the client's instead of appending to it
        lines = headers.getlist(PROXY_HEADER) if hasattr(headers, "getlist") else [headers.get(PROXY_HEADER) or ""]
        forwarded = [part.strip() for line in lines for part in line.split(",") if part.strip()]
        if forwarded:
            return _network(forwarded[-1])
    return _network(getattr(getattr(request, "client", None), "host", None) or "unknown")


def _network(address: str) -> str:
    """An IPv6 address as its /64 (one home or host gets a whole /64: a new address each request is free there)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else address


class BodyLimit:
    """ASGI middleware: a request whose body is over `max_bytes` is answered 413 before it is parsed (by its
    Content-Length, or while it streams in without one)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen, refused, started = 0, False, False

        async def counted():  # a body that streams in without a length: refused once it passes the limit
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            event = await receive()
            seen += len(event.get("body", b""))
            if seen > self.max_bytes:
                refused = True
                if not started:  # (an app that answered already has its answer out)
                    await self._refuse(send)
                return {"type": "http.disconnect"}  # the app stops reading; what it answers is not sent
            return event

        async def unless_refused(message):
            nonlocal started
            if not refused:
                started = True
                await send(message)

        return await self.app(scope, counted, unless_refused)

    async def _refuse(self, send):
        body = (
            f"Request body over the server's limit of {self.max_bytes // 2**20} MB: send smaller pictures "
            "(uploads go through /upload, each file up to the upload limit)."
        ).encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def jobs_of(fn) -> int:
    """How many jobs one call of a gradio BlockFunction is: a comparison is several generations; the page's light
    work (`LIGHT_ID`: a dropdown's choices, the page's texts, a few milliseconds each) none."""
    if fn is None or fn.concurrency_id == LIGHT_ID:
        return 0
    return getattr(fn.fn, "jobs", 1)


def cap_per_client(blocks, jobs_per_client: int, behind_proxy: bool = False) -> None:
    """At most `jobs_per_client` jobs (`jobs_of`) of one client queued or running at once: a call over it is refused
    at the door of gradio's queue, in the page's language, and the others' places stay free. (gradio's Queue.push,
    wrapped on this instance: gradio has no per-client limit of its own; pinned by tests/security.)"""
    if jobs_per_client <= 0:
        return
    queue = blocks._queue
    push = queue.push

    def light_waiting(client: str) -> int:
        waiting = queue.event_queue_per_concurrency_id.get(LIGHT_ID)
        events = waiting.queue if waiting is not None else []
        return sum(client_address(e.request, behind_proxy) == client for e in events)

    def held(client: str) -> int:
        waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
        running = [e for job in queue.active_jobs if job for e in job]
        return sum(jobs_of(e.fn) for e in waiting + running if client_address(e.request, behind_proxy) == client)

    async def capped(self, body, request, username):
        from gradio import route_utils

        try:
            fn = route_utils.get_fn(blocks, None, body)
        except Exception:  # gradio refuses it itself
            return await push(body, request, username)
        client = client_address(request, behind_proxy)
        jobs = jobs_of(fn)
        if not jobs and light_waiting(client) >= LIGHT_WAITING:  # a flood of light events fills the queue too
            return False, translate(message(BUSY, n=LIGHT_WAITING), locale_of(request)), "queue_full"
        if jobs and held(client) + jobs > max(jobs_per_client, jobs):
            return False, translate(message(BUSY, n=held(client)), locale_of(request)), "queue_full"
        return await push(body, request, username)

    queue.push = types.MethodType(capped, queue)
