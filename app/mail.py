"""E-mail for workflow notifications, sent over SMTP after the action has committed.

Off unless ``mail.enabled`` is true in the settings. When on, the workflow engine
hands every transaction's notifications to a :class:`Mailer` (its ``deliver``
channel) once they are committed; the kinds in :data:`MAILED` go, as one e-mail
each, to users who are active and have an e-mail address. An SMTP server that is
down or refuses a message is logged (logger ``app.mail``) and changes nothing
else: the in-app notification is saved either way, and the action stands.

The e-mails are composed in the request (they read the recipients) and sent by
a thread of the process (:class:`Outbox`), so nobody waits on a slow mail server
to see their approval go through. A process that ends sends what is queued
first, for at most the SMTP timeout.

Each e-mail is in its reader's language (theirs, else the configured default),
from the same catalogue as the pages, loaded here rather than through
Flask-Babel: the deadline command mails outside any request.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from babel.support import Translations
from sqlalchemy import Engine, select

from metamodel.errors import CrmError
from metamodel.messages import Message
from metamodel.system_tables import users
from metamodel.text import localise
from workflow_engine.notifications import Notice

log = logging.getLogger(__name__)

# What is worth an e-mail: a decision to take or one taken. A copy for information,
# a comment or a withdrawal stays in the app.
MAILED = {
    "assigned": Message("Approval needed"),
    "approved": Message("Approved"),
    "rejected": Message("Rejected"),
    "sent_back": Message("Sent back"),
    "escalated": Message("Approval overdue"),
}
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
SUBJECT_LENGTH = 150
# A sender may be a bare address or "Name <address>"; local domains (crm@localhost) are fine.
ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str
    smtp_port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    site_url: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> MailSettings:
        """The ``mail:`` settings, checked; a CrmError names the first setting at fault."""
        host, port, sender = raw.get("smtp_host"), raw.get("smtp_port"), raw.get("sender")
        if not isinstance(host, str) or not host.strip():
            raise CrmError("name the SMTP server, e.g. smtp_host: localhost", "/mail/smtp_host")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise CrmError(f"{port!r} is not a port number (1 to 65535)", "/mail/smtp_port")
        if not isinstance(sender, str) or not ADDRESS.match(parseaddr(sender)[1]):
            raise CrmError(f"{sender!r} is not an e-mail address to send from", "/mail/sender")
        for key in ("username", "password"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise CrmError("must be text", f"/mail/{key}")
        starttls = raw.get("starttls", False)
        if not isinstance(starttls, bool):
            raise CrmError("must be true or false", "/mail/starttls")
        timeout = raw.get("timeout", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise CrmError("must be a number of seconds above 0", "/mail/timeout")
        site_url = raw.get("site_url")
        if site_url is not None:
            parts = urlsplit(site_url.strip()) if isinstance(site_url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
                raise CrmError(
                    f"{site_url!r} is not the address of the CRM, e.g. https://crm.example.com",
                    "/mail/site_url",
                )
            site_url = site_url.strip().rstrip("/")
        return cls(
            site_url=site_url,
            smtp_host=host.strip(),
            smtp_port=port,
            sender=sender.strip(),
            username=raw.get("username") or None,
            password=raw.get("password"),
            starttls=starttls,
            timeout=float(timeout),
        )


def mailer_from(settings: dict[str, Any], engine: Engine) -> Mailer | None:
    """The Mailer the settings ask for, or None when e-mail is off."""
    raw = settings.get("mail") or {}
    if not raw.get("enabled"):
        return None
    languages = settings.get("languages") or ["en"]
    default = settings.get("default_language") or "en"
    return Mailer(MailSettings.parse(raw), engine, languages=languages, default_language=default)


@dataclass(frozen=True)
class Recipient:
    username: str
    name: str | None
    email: str
    language: str | None = None


def recipients(engine: Engine, user_ids: set[int]) -> dict[int, Recipient]:
    """The active users among ``user_ids`` that have an e-mail address."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                users.c.id, users.c.username, users.c.display_name, users.c.email, users.c.language
            ).where(users.c.id.in_(sorted(user_ids)), users.c.active.is_(True))
        )
        return {
            row.id: Recipient(row.username, row.display_name, row.email.strip(), row.language)
            for row in rows
            if row.email and row.email.strip()
        }


@lru_cache(maxsize=8)
def catalogue(language: str) -> Callable[[str], str]:
    """The interface's translations into ``language`` (English: the text as it is)."""
    return Translations.load(str(TRANSLATIONS), [language], domain="messages").gettext


def in_language(message: str, language: str) -> str:
    """A message of the core (a Message) in ``language``; other text as it is."""
    if not isinstance(message, Message):
        return message
    if language == "en":
        return message.translated(catalogue(language))
    return message.translated(catalogue(language), lambda text: localise(text, language))


def compose(
    settings: MailSettings, notice: Notice, to: Recipient, language: str = "en"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = formataddr((to.name or to.username, to.email))
    said = in_language(notice.message, language)
    subject = f"{in_language(MAILED[notice.kind], language)}: {said}"
    if len(subject) > SUBJECT_LENGTH:
        subject = subject[: SUBJECT_LENGTH - 1] + "…"
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.sender)[1].rpartition("@")[2])
    message["X-CRM-Notification"] = notice.kind
    record = Message(
        "Record: {app} / {entity} #{id}",
        app=notice.app,
        entity=notice.entity,
        id=notice.record_id,
    )
    lines = [said, "", in_language(record, language)]
    if notice.approval_id is not None:
        approval = Message("Approval: #{id}", id=notice.approval_id)
        lines.append(in_language(approval, language))
    if settings.site_url:
        # The record's page, where its approval is decided too.
        address = f"{settings.site_url}/a/{notice.app}/{notice.entity}/{notice.record_id}"
        lines.append(in_language(Message("Open: {url}", url=address), language))
    footer = Message(
        "You get this e-mail as {user}; it is also in your notifications.", user=to.username
    )
    lines += ["", in_language(footer, language)]
    message.set_content("\n".join(lines) + "\n")
    return message


class Outbox:
    """E-mails waiting for the SMTP server, sent in order by one thread of this process.

    The thread starts with the first e-mail, and again in a process forked from
    one that had it (a web server's worker): threads do not survive a fork.
    """

    def __init__(self, send: Callable[[list[EmailMessage]], Any], wait_at_exit: float):
        self._send = send
        self._queue: queue.Queue[list[EmailMessage]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        atexit.register(self.flush, wait_at_exit)

    def put(self, messages: list[EmailMessage]) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
                if self._pid != os.getpid():
                    self._queue = queue.Queue()  # the parent's queue is the parent's to send
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="crm-mail", daemon=True)
                self._thread.start()
        self._queue.put(messages)

    def pending(self) -> int:
        """Batches queued or being sent."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every batch queued so far was handed over (or failed); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks and self._pid == os.getpid():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                done.wait(left)
        return True

    def _run(self) -> None:
        while True:
            messages = self._queue.get()
            try:
                self._send(messages)
            except Exception:  # the thread must live on for the next e-mails
                log.exception("notification e-mails not sent")
            finally:
                self._queue.task_done()


class Mailer:
    """A ``deliver`` channel for the workflow engine: notices in, e-mails out (by the outbox)."""

    def __init__(
        self,
        settings: MailSettings,
        engine: Engine,
        *,
        languages: list[str] | None = None,
        default_language: str = "en",
    ):
        self.settings = settings
        self.engine = engine
        self.languages = languages or ["en"]
        self.default_language = default_language
        self.outbox = Outbox(self.send, wait_at_exit=settings.timeout)

    def language_of(self, to: Recipient) -> str:
        return to.language if to.language in self.languages else self.default_language

    def __call__(self, notices: list[Notice]) -> None:
        wanted = [n for n in notices if n.kind in MAILED]
        if not wanted:
            return
        found = recipients(self.engine, {n.user_id for n in wanted})
        messages = [
            compose(self.settings, n, to, self.language_of(to))
            for n in wanted
            if (to := found.get(n.user_id)) is not None
        ]
        if messages:
            self.outbox.put(messages)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the e-mails queued so far to be sent (or to fail)."""
        return self.outbox.flush(timeout)

    def send(self, messages: list[EmailMessage]) -> int:
        """Send over one SMTP connection; returns how many went. Failures are logged."""
        settings = self.settings
        sent = 0
        try:
            with smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout
            ) as smtp:
                if settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                for message in messages:
                    try:
                        smtp.send_message(message)
                        sent += 1
                    except smtplib.SMTPException as error:
                        log.warning("e-mail to %s not sent: %s", message["To"], error)
        except (smtplib.SMTPException, OSError) as error:
            log.warning(
                "%d of %d notification e-mails not sent: SMTP server %s:%s: %s",
                len(messages) - sent,
                len(messages),
                settings.smtp_host,
                settings.smtp_port,
                error,
            )
        return sent
