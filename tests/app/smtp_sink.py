"""A tiny SMTP server for tests: it accepts every message on 127.0.0.1 and keeps it.

It speaks just enough SMTP for ``smtplib`` (EHLO/HELO, MAIL, RCPT, DATA, RSET,
NOOP, QUIT). A message is stored before DATA is answered, so once the client's
``send_message`` returns, the message is in :attr:`SmtpSink.received`.
"""

from __future__ import annotations

import email
import socketserver
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: list[str]
    message: EmailMessage


def _address(argument: str) -> str:
    """The address of ``FROM:<a@b> SIZE=...`` or ``TO:<a@b>``."""
    value = argument.split(":", 1)[1].strip()
    return value.split(">", 1)[0].lstrip("<") if value.startswith("<") else value.split()[0]


class _Session(socketserver.StreamRequestHandler):
    server: _Server

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def handle(self) -> None:
        try:
            self.converse()
        except (ConnectionError, TimeoutError):
            return

    def converse(self) -> None:
        self.reply("220 sink ESMTP ready")
        mail_from, rcpt_to = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == "HELO":
                self.reply("250 sink")
            elif verb == "MAIL":
                mail_from, rcpt_to = _address(line), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt_to.append(_address(line))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                self.server.sink.keep(mail_from or "", rcpt_to, self.read_data())
                self.reply("250 OK: queued")
                mail_from, rcpt_to = None, []
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")

    def read_data(self) -> bytes:
        lines = []
        while True:
            raw = self.rfile.readline()
            if raw in (b".\r\n", b".\n", b""):
                return b"".join(lines)
            lines.append(raw[1:] if raw.startswith(b"..") else raw)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: SmtpSink


class SmtpSink:
    """``with SmtpSink() as sink:`` serves on ``sink.port`` until the block ends."""

    def __init__(self):
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.sink = self
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def keep(self, mail_from: str, rcpt_to: list[str], data: bytes) -> None:
        message = email.message_from_bytes(data, policy=policy.default)
        with self._lock:
            self.received.append(Received(mail_from, list(rcpt_to), message))

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
