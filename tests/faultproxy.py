"""A TCP proxy that misbehaves on demand, between maild and a mail server (threads, no asyncio).

Faults, each a switch the test flips while traffic flows:
- `refuse()` / `restore()`: close the listening socket (connections are refused) / listen again
  on the same port — a server that is down for a while.
- `blackhole`: new connections are accepted and never answered — a server that never answers.
- `stall`: server→client bytes are swallowed on every connection — an IDLE silently stalled.
- `drop_after_data`: (SMTP) once the client has sent the end of a message (CRLF.CRLF), the
  server's answer is swallowed and both sides are closed: the outcome is unknown to the client.
- `drop_s2c_after`: a list of byte counts; each new connection takes the first one and is cut
  after forwarding that many server→client bytes (mid-greeting, mid-FETCH, mid-IDLE).
- `drop_all(inject=b"")`: cut every open connection now, optionally after sending `inject` to the
  client first (e.g. `* BYE ...`).
- `target`: (host, port) for new connections; change it to follow a restarted server.
"""

from __future__ import annotations

import socket
import threading


class FaultProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.host = host
        self.target = target
        self.blackhole = False
        self.stall = False
        self.drop_after_data = False
        self.drop_s2c_after: list[int] = []
        self.connections = 0  # accepted so far
        self._pairs: set[tuple[socket.socket, socket.socket | None]] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.port = 0
        self._closed = False
        self.restore()

    # -- switches ---------------------------------------------------------------------------
    def refuse(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()

    def restore(self) -> None:
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def drop_all(self, inject: bytes = b"") -> int:
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for client, server in pairs:
            if inject:
                try:
                    client.sendall(inject)
                except OSError:
                    pass
            _close(client, server)
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        self.refuse()
        self.drop_all()

    # -- plumbing -----------------------------------------------------------------------------
    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            self.connections += 1
            if self.blackhole:
                with self._lock:
                    self._pairs.add((client, None))
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
            cut = self.drop_s2c_after.pop(0) if self.drop_s2c_after else None
            state = {"data_ended": False}
            threading.Thread(target=self._pump_c2s, args=(pair, state), daemon=True).start()
            threading.Thread(target=self._pump_s2c, args=(pair, state, cut), daemon=True).start()

    def _forget(self, pair: tuple[socket.socket, socket.socket | None]) -> None:
        with self._lock:
            self._pairs.discard(pair)
        _close(*pair)

    def _pump_c2s(self, pair: tuple[socket.socket, socket.socket], state: dict) -> None:
        client, server = pair
        tail = b""
        try:
            while data := client.recv(65536):
                if self.drop_after_data and b"\r\n.\r\n" in tail + data:
                    state["data_ended"] = True
                tail = (tail + data)[-4:]
                server.sendall(data)
        except OSError:
            pass
        self._forget(pair)

    def _pump_s2c(self, pair: tuple[socket.socket, socket.socket], state: dict,
                  cut: int | None) -> None:
        client, server = pair
        sent = 0
        try:
            while data := server.recv(65536):
                if state["data_ended"]:
                    self.drop_after_data = False  # once
                    break
                if self.stall:
                    continue
                if cut is not None and sent + len(data) >= cut:
                    client.sendall(data[:max(0, cut - sent)])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        self._forget(pair)


def _close(*socks: socket.socket | None) -> None:
    for sock in socks:
        if sock is None:
            continue
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
