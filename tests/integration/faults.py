"""A loopback HTTP proxy in front of moto that answers some Kinesis calls with AWS errors.

moto never throttles; this proxy does, the way Kinesis does: HTTP 400 with the JSON error
body of the AWS JSON protocol (``ProvisionedThroughputExceededException``,
``KMSThrottlingException``, ``ExpiredIteratorException``, ``InvalidArgumentException``) or
HTTP 500 ``InternalFailure``; or it drops the connection without an answer (status 0, code
``DROP``: a network failure as the client sees it). Everything else is forwarded to moto
unchanged.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from dredge.testing import free_port

# (target, request body) -> (status, error code) to inject, or None to forward
Decide = Callable[[str, dict[str, Any]], tuple[int, str] | None]
DROP = (0, "DROP")  # close the connection without answering


class FaultProxy:
    def __init__(self, upstream: str, decide: Decide) -> None:
        self.upstream = upstream.rstrip("/")
        self.decide = decide
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.injected: collections.Counter[str] = collections.Counter()
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.access_keys: collections.Counter[str] = collections.Counter()  # who signed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._lock = threading.RLock()  # decide() may ask count() while the lock is held

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application(client_max_size=64 << 20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        session = aiohttp.ClientSession(loop=loop)
        self._session = session
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(session.close())
            loop.run_until_complete(runner.cleanup())
            loop.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        auth = request.headers.get("Authorization", "")
        if "Credential=" in auth:
            with self._lock:
                self.access_keys[auth.split("Credential=", 1)[1].split("/", 1)[0]] += 1
        try:
            doc = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            doc = {}
        with self._lock:
            fault = self.decide(target, doc) if target else None
            if fault is not None:
                self.injected[f"{target}:{fault[1]}"] += 1
            else:
                self.forwarded[target] += 1
        if fault == DROP:
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection reset mid-request
            return web.Response(status=500)  # never sent
        if fault is not None:
            status, code = fault
            return web.Response(status=status, content_type="application/x-amz-json-1.1",
                                body=orjson.dumps({"__type": code, "message": f"injected {code}"}))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "transfer-encoding")}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         headers=headers, data=body) as resp:
            data = await resp.read()
            out = {k: v for k, v in resp.headers.items()
                   if k.lower() in ("content-type", "x-amzn-requestid", "x-amz-crc32")}
            return web.Response(status=resp.status, body=data, headers=out)

    def count(self, target: str, code: str) -> int:
        with self._lock:
            return self.injected[f"{target}:{code}"]
