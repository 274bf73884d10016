"""A TCP proxy the tests put between the gateway and PostgreSQL or Redis.

It lets a test take a backing service away from the gateway alone (``cut``: existing
connections are closed and new ones refused, as when the server is down) and give it back
(``restore``), while the workers keep their direct connections. It also watches what the
gateway sends: ``watch`` signals when a byte pattern passes (a Redis ``LPUSH``),
``sent_count`` counts one, and a
PostgreSQL proxy records every statement the gateway executes (``statements``), parsed from
the frontend protocol, so a test can count queries and commits on the real wire.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

# Startup-phase request codes that are not a StartupMessage (the server answers them first).
_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


@dataclass
class _PgFrontend:
    """Parses one connection's client-to-server stream into executed statements."""

    connection: int
    sink: list[tuple[int, str]]
    lock: threading.Lock
    buffer: bytearray = field(default_factory=bytearray)
    started: bool = False
    prepared: dict[bytes, str] = field(default_factory=dict)

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if not self.started:
                if len(self.buffer) < 8:
                    return
                (length,) = struct.unpack("!i", self.buffer[:4])
                if len(self.buffer) < length:
                    return
                (code,) = struct.unpack("!i", self.buffer[4:8])
                del self.buffer[:length]
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST):
                    self.started = True  # the StartupMessage; typed messages follow
                continue
            if len(self.buffer) < 5:
                return
            kind = self.buffer[0:1]
            (length,) = struct.unpack("!i", self.buffer[1:5])
            if len(self.buffer) < 1 + length:
                return
            body = bytes(self.buffer[5 : 1 + length])
            del self.buffer[: 1 + length]
            self._message(kind, body)

    def _message(self, kind: bytes, body: bytes) -> None:
        if kind == b"Q":  # simple query
            self._record(body.split(b"\0", 1)[0].decode(errors="replace"))
        elif kind == b"P":  # Parse: statement name, query text
            name, rest = body.split(b"\0", 1)
            self.prepared[name] = rest.split(b"\0", 1)[0].decode(errors="replace")
        elif kind == b"B":  # Bind: portal name, statement name — one execution of that statement
            _portal, rest = body.split(b"\0", 1)
            name = rest.split(b"\0", 1)[0]
            self._record(self.prepared.get(name, "<unknown prepared statement>"))

    def _record(self, sql: str) -> None:
        with self.lock:
            self.sink.append((self.connection, sql.strip()))


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; see the module docstring."""

    def __init__(self, target_host: str, target_port: int, postgres: bool = False) -> None:
        self.target = (target_host, target_port)
        self.postgres = postgres
        self.statements: list[tuple[int, str]] = []  # (connection number, SQL), in order
        self._connections = 0
        self._lock = threading.Lock()
        self._watches: list[tuple[bytes, threading.Event]] = []
        self._sent = bytearray()  # everything clients sent (Redis proxies; tests are short)
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()

    # -- control ----------------------------------------------------------------------------

    def cut(self) -> None:
        """The service goes away: refuse new connections and drop the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown first: close() alone leaves a thread blocked in accept() accepting on it.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        """The service is back, on the same port."""
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.cut()

    def watch(self, pattern: bytes) -> threading.Event:
        """An event set once ``pattern`` passes from the client to the server."""
        event = threading.Event()
        with self._lock:
            self._watches.append((pattern, event))
        return event

    def sent_count(self, pattern: bytes) -> int:
        """How often ``pattern`` has passed from clients to the server so far (within one read)."""
        with self._lock:
            return self._sent.count(pattern)

    def take_statements(self) -> list[tuple[int, str]]:
        """The statements recorded since the last call, with their connection's number (PostgreSQL proxies)."""
        with self._lock:
            taken = list(self.statements)
            self.statements.clear()  # in place: the connections' parsers hold this list
        return taken

    # -- plumbing ---------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
                self._connections += 1
                number = self._connections
            parser = _PgFrontend(number, self.statements, self._lock) if self.postgres else None
            threading.Thread(target=self._pump, args=(client, server, parser, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, parser: _PgFrontend | None, upstream: bool) -> None:
        tail = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)  # forwarded first: a watcher that cuts on a match cuts after it
                if upstream:
                    if parser is not None:
                        parser.feed(data)
                    window = tail + data
                    with self._lock:
                        if not self.postgres:
                            self._sent += data
                        for pattern, event in self._watches:
                            if pattern in window:
                                event.set()
                    tail = window[-256:]
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            source.close()
