"""E-mail over SMTP: one message per page, threaded per incident.

Connects to `host:port` with `security` `starttls` (port 587 by default: plain connection
upgraded with STARTTLS, refused if the server cannot), `tls` (465: TLS from the first byte) or
`none` (25: no encryption, for a relay on the same host or network); logs in when `username` is
set. The server's certificate is checked against the system's CAs, plus `ca_cert` (PEM) for a
relay signed by a private CA.

The message is multipart/alternative — plain text and HTML, every value escaped — to `to`, or to
the page's `recipient` alone (a personal notification). Its Message-ID is derived from the
incident's dedup key and the action (`<pulser-incident-42.trigger@example.com>`), so a retried
send keeps its id and mail clients thread every later message under the trigger's through
`In-Reply-To`/`References`.

SMTP says whether to retry: a 4xx reply (greylisting, a full queue), a timeout or a dropped
connection may work later; a 5xx (535 authentication failed, 550 mailbox unknown) needs a person.
"""

from __future__ import annotations

import html
import re
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Literal

import aiosmtplib
import httpx
from pydantic import Field, field_validator, model_validator

from alerts.outbound.channels import answers
from alerts.outbound.channels.base import DeliveryFailed, Page, SendResult
from alerts.outbound.channels.fields import ChannelSettings, EmailAddress, Secret
from alerts.outbound.channels.render import cut, facts, headline, safe_link, subject

KIND = "email"
LABEL = "E-mail (SMTP)"
SECRET_FIELDS = ("password",)
ACTIONS = frozenset({"trigger", "escalate", "resolve", "test"})

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
SUBJECT_LIMIT = 200
DESCRIPTION_LIMIT = 10_000
HOST = re.compile(r"^[A-Za-z0-9.-]+$|^\[?[0-9a-fA-F:.]+\]?$")


class EmailSettings(ChannelSettings):
    host: str
    port: int | None = Field(None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: Secret | None = None
    sender: EmailAddress = Field(alias="from")
    to: list[EmailAddress] = Field(default_factory=list, max_length=50)
    timeout: float = Field(15.0, gt=0, le=120)
    ca_cert: str | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or not HOST.match(value):
            raise ValueError("must be a host name or IP address, like smtp.example.com")
        return value

    @field_validator("ca_cert")
    @classmethod
    def _ca(cls, value: str | None) -> str | None:
        if value:
            try:
                ssl.create_default_context().load_verify_locations(cadata=value)
            except (ssl.SSLError, ValueError):
                raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE----- …)") from None
        return value or None

    @model_validator(mode="after")
    def _login(self):
        if self.username and self.password is None:
            raise ValueError("password: required when a username is set")
        if self.password is not None and not self.username:
            raise ValueError("username: required when a password is set")
        return self


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "pulser.invalid"


def _id_part(text: str) -> str:
    """Text allowed inside a Message-ID's left part."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def message_id(page: Page, sender: str, action: str | None = None) -> str:
    """`<dedup-key.action[.step]@domain>`: stable for a retry; a test gets a fresh one each time."""
    action = action or page.action
    parts = [_id_part(page.dedup_key), action]
    if action == "escalate" and page.step:
        parts.append(_id_part(page.step))
    if action == "test":
        parts.append(uuid.uuid4().hex[:12])
    return f"<{'.'.join(parts)}@{_domain(sender)}>"


def plain_text(page: Page) -> str:
    lines = [headline(page), ""]
    lines += [f"{name}: {value}" for name, value in facts(page)]
    if page.description:
        lines += ["", cut(page.description, DESCRIPTION_LIMIT)]
    if link := safe_link(page):
        lines += ["", f"Open incident: {link}"]
    lines += ["", f"-- Pulser ({page.dedup_key})"]
    return "\n".join(lines) + "\n"


def html_text(page: Page) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0">{e(name)}</th><td>{e(value)}</td></tr>' for name, value in facts(page)
    )
    parts = [f"<h2 style=\"margin:0 0 12px\">{e(headline(page))}</h2>", f"<table>{rows}</table>"]
    if page.description:
        parts.append(f'<pre style="white-space:pre-wrap">{e(cut(page.description, DESCRIPTION_LIMIT))}</pre>')
    if link := safe_link(page):
        parts.append(f'<p><a href="{e(link, quote=True)}">Open incident</a></p>')
    parts.append(f'<p style="color:#888">Pulser ({e(page.dedup_key)})</p>')
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def build(settings: EmailSettings, page: Page, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(recipients)
    prefix = "" if page.action in ("trigger", "test") else "Re: "
    message["Subject"] = cut(prefix + subject(page), SUBJECT_LIMIT).replace("\n", " ").replace("\r", " ")
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(page, settings.sender)
    if page.action not in ("trigger", "test"):
        root = message_id(page, settings.sender, "trigger")
        message["In-Reply-To"] = root
        message["References"] = root
    message["X-Pulser-Incident"] = page.dedup_key
    message["Auto-Submitted"] = "auto-generated"  # no vacation replies to an alert sender
    message.set_content(plain_text(page))
    message.add_alternative(html_text(page), subtype="html")
    return message


def _tls_context(settings: EmailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_cert:
        context.load_verify_locations(cadata=settings.ca_cert)
    return context


def _certificate_error(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed, however deep aiosmtplib wrapped it."""
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _failure(exc: Exception, settings: EmailSettings, secrets: tuple[str, ...]) -> DeliveryFailed:
    server = f"the SMTP server {settings.host}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        retryable = all(400 <= r.code < 500 for r in refusals)
        said = "; ".join(f"{r.recipient}: {r.code} {answers.said(r.message, secrets, 120)}" for r in refusals)
        reason = f"{server} refused every recipient ({said})" + ("; will retry" if retryable else "; check the addresses")
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=retryable)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        reason = f"{server} refused the login ({exc.code} {answers.said(exc.message, secrets, 160)}); check the username and password"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=400 <= exc.code < 500)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        reason = f"{server} refused the sender {exc.sender} ({exc.code} {answers.said(exc.message, secrets, 160)})"
        if exc.code >= 500:
            reason += "; use an address the server may send from"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=400 <= exc.code < 500)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        retryable = 400 <= exc.code < 500
        reason = f"{server} answered {exc.code} {answers.said(exc.message, secrets, 160)}" + ("; will retry" if retryable else "")
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=retryable)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return DeliveryFailed(f"{server} did not answer within {settings.timeout:g} s", retryable=True)
    if (untrusted := _certificate_error(exc)) is not None:
        reason = f"{server}'s certificate is not trusted ({untrusted.verify_message}); fix the certificate or set ca_cert"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=False)
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
        isinstance(exc, aiosmtplib.SMTPException) and "not supported" in str(exc).lower()
    ):
        reason = f"{server}: {answers.said(exc, secrets, 160)}; choose another security setting"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=False)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError)):
        reason = f"{server} could not be reached: {answers.said(exc, secrets, 160) or type(exc).__name__}"
        return DeliveryFailed(answers.scrub(reason, secrets), retryable=True)
    raise exc


async def send(settings: EmailSettings, page: Page, ref: str | None, http: httpx.AsyncClient | None = None) -> SendResult:
    recipients = [page.recipient] if page.recipient else list(settings.to)
    if not recipients:
        raise DeliveryFailed("e-mail: no recipient; add addresses to the channel's 'to'", retryable=False)
    message = build(settings, page, recipients)
    password = settings.password.get_secret_value() if settings.password else None
    secrets = answers.secret_values(password)
    try:
        errors, _ = await aiosmtplib.send(
            message,
            recipients=[parseaddr(r)[1] for r in recipients],
            sender=parseaddr(settings.sender)[1],
            hostname=settings.host,
            port=settings.port or DEFAULT_PORTS[settings.security],
            username=settings.username,
            password=password,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            timeout=settings.timeout,
            tls_context=_tls_context(settings),
        )
    except Exception as exc:  # every SMTP and socket error is mapped; anything else re-raises
        raise _failure(exc, settings, secrets) from None
    detail = f"sent to {len(recipients) - len(errors)} of {len(recipients)} as {message['Message-ID']}"
    if errors:
        detail += "; refused: " + "; ".join(f"{address}: {answer.code} {answers.said(answer.message, secrets, 120)}" for address, answer in errors.items())
    return SendResult(detail=answers.scrub(detail, secrets), ref=message["Message-ID"])


async def check(settings: EmailSettings, *, timeout: float = 5.0) -> str | None:
    """Does the SMTP server answer? Connect (TLS as set), EHLO, and log in when a username is set;
    nothing is sent. None when all of it worked; else what failed, in words without secrets.

    Saving a channel from Slack calls it first, so a wrong host, port or password is said on the
    form rather than by the first page that fails."""
    settings = settings.model_copy(update={"timeout": min(timeout, settings.timeout)})
    password = settings.password.get_secret_value() if settings.password else None
    secrets = answers.secret_values(password)
    smtp = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port or DEFAULT_PORTS[settings.security],
        username=settings.username,
        password=password,
        use_tls=settings.security == "tls",
        start_tls=settings.security == "starttls",
        timeout=settings.timeout,
        tls_context=_tls_context(settings),
    )
    try:
        await smtp.connect()  # greeting, STARTTLS and login as set
        await smtp.ehlo()
        await smtp.quit()
    except Exception as exc:  # every SMTP and socket error becomes a sentence
        try:
            return _failure(exc, settings, secrets).reason
        except Exception:
            return f"the SMTP server {settings.host} could not be checked ({type(exc).__name__})"
    finally:
        if smtp.is_connected:
            smtp.close()
    return None
