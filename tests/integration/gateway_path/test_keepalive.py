"""The gateway keeps an idle connection open across a client's pause (gunicorn's default closes it after 2 s)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.integration.gateway_path.rig import Rig
from tests.support import Api


def test_a_connection_idle_for_3_seconds_still_serves_the_next_request(rig: Rig, gateway: Callable[..., Api]) -> None:
    api = gateway()
    address = urlsplit(api.base_url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        first = connection.getresponse()
        first.read()
        socket_used = connection.sock

        time.sleep(3)
        # On a connection the server has closed this raises RemoteDisconnected: http.client
        # only reconnects when it holds no socket.
        connection.request("GET", "/healthz")
        second = connection.getresponse()
        second.read()
        same_socket = connection.sock is socket_used
    finally:
        connection.close()

    assert (first.status, second.status) == (200, 200)
    assert same_socket
