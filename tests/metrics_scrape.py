"""The server's Prometheus exposition, fetched over HTTP from its metrics port."""

from __future__ import annotations

import urllib.request

from tests.live_servers import LiveServer


def scrape_text(live: LiveServer) -> str:
    port = live.server.metrics_port
    assert port is not None
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()
