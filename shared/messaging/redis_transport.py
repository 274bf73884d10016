"""kombu's Redis transport, with one crash on a broker restart turned into the recoverable error it is.

kombu 5.7 restores unacknowledged messages while it closes a channel after a lost connection;
when the broker restarted, the connection may already have been collected, and building a
client from it raised ``AttributeError: 'NoneType' object has no attribute 'hostname'``,
which Celery treats as unrecoverable: the worker died. Without a connection there is nothing
to restore to anyway, so this says so with a connection error, which the worker ignores
while it reconnects (and Redis' visibility timeout hands the messages back later).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise kombu_redis.redis.exceptions.ConnectionError("the broker connection is already closed")
        return super()._connparams(asynchronous)


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    Channel = Channel
