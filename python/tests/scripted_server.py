"""A scripted strata-server stand-in for tests of the client's transport (timeouts, broken
connections, reconnects, descriptor passing) that a real server cannot be made to misbehave in.

It answers HELLO with a memfd arena (SCM_RIGHTS) and hands every other request to `handler(verb,
request_id, body, arena)`, which returns the response frame, None (never answer) or CLOSE."""

import mmap
import os
import socket
import struct
import threading

from strata_client import wire

CLOSE = object()


class ScriptedServer:
    def __init__(self, path, handler=None, arena_bytes=1 << 20, hello_status=wire.WireStatus.OK,
                 root=(0x1111, 0x2222)):
        self.path = str(path)
        self.handler = handler or (lambda verb, rid, body, arena: None)
        self.arena_bytes = arena_bytes
        self.hello_status = hello_status
        self.root = root
        self.epoch = 0
        self.hellos = []  # HelloRequest per connection
        self.fd = os.memfd_create("scripted-arena")
        os.ftruncate(self.fd, arena_bytes)
        self.arena = mmap.mmap(self.fd, arena_bytes)  # the server's own mapping
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._conns = []
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def close(self):
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self._listener.close()
        for c in self._conns:
            c.close()
        self.arena.close()
        os.close(self.fd)

    def drop_connections(self):
        """Closes every open connection, as a crashed server would."""
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    @staticmethod
    def _recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _serve(self, conn):
        conn.settimeout(0.2)
        try:
            while not self._stop.is_set():
                try:
                    head = self._recv_exact(conn, wire.HEADER_SIZE)
                except socket.timeout:
                    continue
                conn.settimeout(5)
                hd = wire.decode_header(head)
                body = self._recv_exact(conn, hd.body_len)
                conn.settimeout(0.2)
                verb = wire.Verb(hd.opcode)
                if verb == wire.Verb.HELLO:
                    self.hellos.append(wire.decode_hello(body))
                    if self.hello_status != wire.WireStatus.OK:
                        conn.sendall(wire.encode_error(hd.request_id, verb, self.hello_status,
                                                       "scripted refusal"))
                        return
                    self.epoch += 1
                    resp = wire.encode_hello_response(hd.request_id, wire.HelloResponse(
                        1, 0, self.epoch, self.arena_bytes, self.root, wire.MAX_BODY,
                        wire.MAX_BATCH, 0))
                    socket.send_fds(conn, [resp], [self.fd])
                    continue
                out = self.handler(verb, hd.request_id, body, self.arena)
                if out is CLOSE:
                    return
                if out is not None:
                    conn.sendall(out)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()


def get_response(request_id, items):
    """A GET response frame; items are (status, tier, family, offset, size, lease)."""
    payload = struct.pack("<I4x", len(items)) + b"".join(
        struct.pack("<BBB5xQQQ", *it) for it in items)
    return wire._response(wire.Verb.GET, request_id, payload)
