"""Recorded HTTP for the remote-provider tests: fixtures in tests/fixtures/http, replayed
through `httpx.MockTransport`, so any real network access fails the test."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import httpx2

FIXTURES = Path(__file__).parent / "fixtures" / "http"


def load_fixture(name: str):
    """A fixture file of tests/fixtures/http, parsed."""
    return json.loads((FIXTURES / name).read_text())


def refuse_network(monkeypatch) -> list:
    """Make every real HTTP request (httpx and httpx2 transports) fail; returns the list the
    refused requests are appended to, so a test can assert that none was tried."""
    attempts = []

    def refuse(transport, request):
        attempts.append(request)
        raise RuntimeError("a test tried to reach the network")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", refuse)
    monkeypatch.setattr(httpx2.HTTPTransport, "handle_request", refuse)
    return attempts


class Replay:
    """An httpx handler: serves `queued` error responses first, then the cassette's answers."""

    def __init__(self, cassette: str, queued: list[str] = ()) -> None:
        self.cassette = load_fixture(cassette)
        self.queued = [load_fixture(name) for name in queued]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.queued:
            r = self.queued.pop(0)
            return httpx.Response(r["status_code"], headers=r["headers"], json=r["json"])
        body = json.loads(request.content)
        for item in self.cassette:
            rec = item["request"]
            if (rec["method"], rec["url"], rec["json"]) == (request.method, str(request.url), body):
                r = item["response"]
                return httpx.Response(r["status_code"], headers=r["headers"], json=r["json"])
        # 418 is neither retried nor expected: the test fails showing the unrecorded body, in
        # the error shapes of both Cohere ({"message"}) and OpenAI ({"error": {"message"}})
        message = f"unrecorded request {body}"
        return httpx.Response(418, json={"message": message, "error": {"message": message}})

    def bodies(self) -> list[dict]:
        """The JSON bodies of the requests received, in order."""
        return [json.loads(r.content) for r in self.requests]

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))
