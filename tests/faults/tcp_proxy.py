"""A small loopback TCP proxy whose link can be cut: the network fault between a client and a server.

Threads, not asyncio, so that it runs beside the blocking test code without an event loop. Bounded:
at most ``max_connections`` client connections at a time (more are closed at once), and every
socket has a timeout-free blocking pump that ends when either side closes or the proxy cuts.

``cut()`` is what a broken cable or a dead uplink looks like to both ends: every open connection is
reset (RST, so neither side waits for a FIN that will not come) and the listening socket is closed,
so new connections are refused. ``restore()`` listens on the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

LOOPBACK = "127.0.0.1"
_BUFFER = 65536


class TcpProxy:
    """Forwards 127.0.0.1:port to target (loopback only) until stopped; cut() and restore() in between."""

    def __init__(self, target_port: int, *, port: int = 0, max_connections: int = 32) -> None:
        self.target = (LOOPBACK, target_port)
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.accepted = 0
        self.refused = 0  # over max_connections, or the target did not answer
        self.cuts = 0
        self.port = port
        self._listen()

    # -- lifecycle --------------------------------------------------------------------------------------
    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(16)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), name=f"proxy-{self.port}",
                                        daemon=True)
        self._thread.start()

    @property
    def is_cut(self) -> bool:
        """True between cut() and restore()."""
        return self._listener is None

    def cut(self) -> None:
        """Reset every connection and refuse new ones until restore()."""
        with self._lock:
            listener, self._listener = self._listener, None
            pairs, self._pairs = self._pairs, []
            self.cuts += 1
        if listener is not None:
            _close(listener)
        if self._thread is not None:
            self._thread.join(5)
        for a, b in pairs:
            _reset(a)
            _reset(b)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        """Cut for good."""
        self.cut()

    # -- forwarding -------------------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            with self._lock:
                full = len(self._pairs) >= self.max_connections or self._listener is not listener
            if full:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                self.refused += 1
                _reset(client)
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._listener is not listener:  # cut while we connected upstream
                    _reset(client)
                    _reset(upstream)
                    return
                self._pairs.append((client, upstream))
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, (client, upstream)), daemon=True,
                                 name=f"proxy-{self.port}-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket]) -> None:
        try:
            while True:
                data = src.recv(_BUFFER)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # One side ended: end the other too, and forget the pair.
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
        _close(dst)
        _close(src)


def _reset(s: socket.socket) -> None:
    # SO_LINGER 0: close sends RST, as a broken path looks to the other end on its next write.
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(s)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()
