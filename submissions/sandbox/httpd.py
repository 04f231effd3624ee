"""The HTTP/1.1 plumbing under the sandbox: a listening socket, keep-alive connections, request bodies
(with limits), and answers written for whichever area of the `Site` owns the path."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import BaseServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .contract import INTERNAL_ERROR, bad_body
from .routing import ApiError, Area, DropConnection, Request, Response, Site, json_response

MAX_BODY_BYTES = 512 * 1024 * 1024
# An unread request body up to this size is drained so the keep-alive connection
# survives an early error answer; a bigger one makes us close the connection instead.
DRAIN_LIMIT = 1024 * 1024
IDLE_CONNECTION_TIMEOUT = 300.0  # generous: clients keep pooled connections idle for a while


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not block shutdown
    request_queue_size = 128  # bursts of new connections from load tests

    def __init__(self, host: str, port: int, site: Site) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.site = site
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler thread blocked on an idle keep-alive connection."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client: nothing left to wake
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # Clients hanging up are routine here (timeouts, drops); anything else is a
        # sandbox bug worth one line, never a traceback per request.
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            sys.stderr.write(f"[sandbox] connection error: {error!r}\n")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Listener:
    """A socket listening on (host, port) from construction on, served by a background thread once
    serve_in_background() is called, until close(). Loopback only: the sandbox has no auth of its own."""

    def __init__(self, host: str, port: int, site: Site) -> None:
        if not is_loopback(host):
            raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}")
        self._server = _ThreadingServer(host, port, site)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def serve_in_background(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, close the socket and every open connection."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.close_connections()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _ThreadingServer
    protocol_version = "HTTP/1.1"
    server_version = "ChamelaionSandbox/1.0"
    timeout = IDLE_CONNECTION_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def __init__(self, request: Any, client_address: Any, server: BaseServer) -> None:
        self._area: Area | None = None
        self._body_consumed = False
        self._responded = False
        self._outcome = "?"
        super().__init__(request, client_address, server)

    # Every method, even an odd one like "PURGE", reaches the same dispatcher, so that
    # the route tables (not http.server) decide between 404 and 405.
    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def _dispatch(self) -> None:
        started = time.perf_counter()
        self._body_consumed = False
        self._responded = False
        self._outcome = "?"
        site = self.server.site
        parts = urlsplit(self.path)
        path = parts.path
        self._area = area = site.area_for(path)
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self._header_map(),
            read_body=self._read_body,
        )
        try:
            self._send(area.respond(request))
        except DropConnection:
            self._drop()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            self._outcome = "client went away"
        except Exception as error:  # a sandbox bug must cost one answer, not the thread
            sys.stderr.write(f"[sandbox] internal error on {self.command} {path}: {error!r}\n")
            self._outcome = "500 (bug)"
            self.close_connection = True
            if not self._responded:
                with contextlib.suppress(OSError):  # the client is gone too: nobody to tell
                    self._send(json_response(500, {"error": INTERNAL_ERROR}))
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            # Path only: the query string is the client's business and headers carry tokens.
            site.log(f"{self.command} {path} -> {self._outcome} ({elapsed:.1f} ms)")

    def _header_map(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), value)
        return headers

    # ----------------------------------------------------------------- request bodies

    def _declared_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        if not raw.strip().isdigit():
            self.close_connection = True  # where this body ends is anyone's guess
            raise bad_body()
        return int(raw)

    def _is_chunked(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _read_body(self) -> bytes:
        """The whole request body, refusing anything over MAX_BODY_BYTES with 413."""
        self._body_consumed = True
        if self._is_chunked():
            return self._read_chunked()
        length = self._declared_length() or 0
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread: this connection is done
            raise ApiError(413, "request entity too large")
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("request body cut short")
        return body

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise bad_body() from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "request entity too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _settle_body(self) -> None:
        """Before answering: drain a small unread body so keep-alive stays in sync."""
        if self._body_consumed:
            return
        self._body_consumed = True
        try:
            length = self._declared_length()
        except ApiError:
            length = None
            self.close_connection = True
        if self._is_chunked() or (length is not None and length > DRAIN_LIMIT):
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    # ----------------------------------------------------------------- answers

    def _send(self, response: Response) -> None:
        self._settle_body()
        self._responded = True
        self._outcome = str(response.status)
        if self._area is not None:
            self._area.answering(response.status)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(response.announced_length or len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.announced_length is not None:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.send_body and response.body and response.trickle_seconds is not None:
            self._trickle(response.body, response.trickle_seconds)
        elif response.send_body and response.body:
            self.wfile.write(response.body)

    def _trickle(self, body: bytes, pause: float) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client hung up: what a client with a deadline does
            for at in range(len(body)):
                self.wfile.write(body[at : at + 1])
                self.wfile.flush()
                time.sleep(pause)

    def _drop(self) -> None:
        """Hang up without a byte of answer (after reading a small body, for a clean FIN)."""
        with contextlib.suppress(OSError):  # hanging up is what we wanted anyway
            self._settle_body()
        self.close_connection = True
        self._outcome = "dropped"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, huge headers...) as JSON too."""
        self.close_connection = True
        # Always answer with a status line (even to a garbled, "HTTP/0.9"-looking request)
        # and never echo the client's bytes back.
        self.request_version = "HTTP/1.1"
        body = json.dumps({"error": HTTPStatus(code).phrase.lower()}).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass  # the client is gone: nobody to tell

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is written by _dispatch, only when verbose
