"""E-mail for workflow notifications, sent over SMTP after the action has committed.

Off unless ``mail.enabled`` is true in the settings. When on, the workflow engine
hands every transaction's notifications to a :class:`Mailer` (its ``deliver``
channel) once they are committed; the kinds in :data:`MAILED` go, as one e-mail
each, to users who are active and have an e-mail address. An SMTP server that is
down or refuses a message is logged (logger ``app.mail``) and changes nothing
else: the in-app notification is saved either way, and the action stands.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

from sqlalchemy import Engine, select

from metamodel.errors import CrmError
from metamodel.system_tables import users
from workflow_engine.notifications import Notice

log = logging.getLogger(__name__)

# What is worth an e-mail: a decision to take or one taken. A copy for information,
# a comment or a withdrawal stays in the app.
MAILED = {
    "assigned": "Approval needed",
    "approved": "Approved",
    "rejected": "Rejected",
    "sent_back": "Sent back",
    "escalated": "Approval overdue",
}
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
        return cls(
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
    return Mailer(MailSettings.parse(raw), engine)


@dataclass(frozen=True)
class Recipient:
    username: str
    name: str | None
    email: str


def recipients(engine: Engine, user_ids: set[int]) -> dict[int, Recipient]:
    """The active users among ``user_ids`` that have an e-mail address."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.id, users.c.username, users.c.display_name, users.c.email).where(
                users.c.id.in_(sorted(user_ids)), users.c.active.is_(True)
            )
        )
        return {
            row.id: Recipient(row.username, row.display_name, row.email.strip())
            for row in rows
            if row.email and row.email.strip()
        }


def compose(settings: MailSettings, notice: Notice, to: Recipient) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = formataddr((to.name or to.username, to.email))
    subject = f"{MAILED[notice.kind]}: {notice.message}"
    if len(subject) > SUBJECT_LENGTH:
        subject = subject[: SUBJECT_LENGTH - 1] + "…"
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.sender)[1].rpartition("@")[2])
    message["X-CRM-Notification"] = notice.kind
    lines = [notice.message, "", f"Record: {notice.app} / {notice.entity} #{notice.record_id}"]
    if notice.approval_id is not None:
        lines.append(f"Approval: #{notice.approval_id}")
    lines += ["", f"You get this e-mail as {to.username}; it is also in your notifications."]
    message.set_content("\n".join(lines) + "\n")
    return message


class Mailer:
    """A ``deliver`` channel for the workflow engine: notices in, e-mails out."""

    def __init__(self, settings: MailSettings, engine: Engine):
        self.settings = settings
        self.engine = engine

    def __call__(self, notices: list[Notice]) -> None:
        wanted = [n for n in notices if n.kind in MAILED]
        if not wanted:
            return
        found = recipients(self.engine, {n.user_id for n in wanted})
        messages = [
            compose(self.settings, n, found[n.user_id]) for n in wanted if n.user_id in found
        ]
        if messages:
            self.send(messages)

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
