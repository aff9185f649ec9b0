"""The e-mail channel against a real SMTP server (aiosmtpd): STARTTLS, implicit TLS and plain
sessions, login, threading headers, escaping, and which SMTP refusals are worth a retry."""

from __future__ import annotations

import asyncio

import pytest

from alerts.outbound import channels
from alerts.outbound.channels import DeliveryFailed
from tests.outbound_standins import SmtpStandin, sample_page


def settings_for(server: SmtpStandin, smtp_ca, **changes) -> dict:
    settings = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": server.security,
        "from": "Pulser <pulser@example.com>",
        "to": ["ops@example.com"],
        "timeout": 5,
    }
    if server.security != "none":
        settings |= {"username": server.username, "password": server.password, "ca_cert": smtp_ca.cert_pem.bytes().decode()}
    return settings | changes


async def send(settings: dict, **page_changes):
    return await channels.send("email", settings, sample_page(**page_changes), None, None)


async def refused(settings: dict, **page_changes) -> DeliveryFailed:
    with pytest.raises(DeliveryFailed) as failed:
        await send(settings, **page_changes)
    return failed.value


async def test_a_trigger_arrives_over_starttls_after_login_as_text_and_html(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    result = await send(settings_for(server, smtp_ca))
    assert server.logins == [server.username]
    [message] = server.messages
    assert server.envelopes == [("pulser@example.com", ["ops@example.com"])]
    assert message["Subject"] == "[CRITICAL] Checkout answers 500 (checkout / production)"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    assert "Service: checkout" in plain and "Count: 3 alerts" in plain and "https://pulser.example.com/incidents/42" in plain
    assert result.ref == message["Message-ID"] == "<pulser-incident-42.trigger@example.com>"


async def test_the_html_part_escapes_what_the_incident_says(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    await send(settings_for(server, smtp_ca), title="<b>Bold</b> & co")
    html = server.messages[0].get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; co" in html


async def test_a_message_arrives_over_implicit_tls(smtp_server, smtp_ca):
    server = await smtp_server("tls")
    await send(settings_for(server, smtp_ca))
    assert len(server.messages) == 1 and server.logins == [server.username]


async def test_a_message_arrives_over_a_plain_session_without_login(smtp_server, smtp_ca):
    server = await smtp_server("none")
    await send(settings_for(server, smtp_ca))
    assert len(server.messages) == 1 and server.logins == []


async def test_a_resolve_threads_under_the_trigger(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    settings = settings_for(server, smtp_ca)
    await send(settings)
    await send(settings, action="resolve", status="resolved", resolved_by="Ana")
    trigger, resolve = server.messages
    assert resolve["Message-ID"] == "<pulser-incident-42.resolve@example.com>"
    assert resolve["In-Reply-To"] == resolve["References"] == trigger["Message-ID"]
    assert resolve["Subject"] == "Re: " + trigger["Subject"]
    assert resolve.get_body(("plain",)).get_content().startswith("Resolved by Ana: ")


async def test_a_personal_page_goes_to_its_recipient_only(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    await send(settings_for(server, smtp_ca), recipient="ana@example.com")
    assert server.envelopes == [("pulser@example.com", ["ana@example.com"])]
    assert server.messages[0]["To"] == "ana@example.com"


async def test_a_wrong_password_is_not_retried_and_the_reason_hides_it(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    failed = await refused(settings_for(server, smtp_ca, password="wrong-Password-123"))
    assert not failed.retryable and "535" in failed.reason and "check the username and password" in failed.reason
    assert "wrong-Password-123" not in failed.reason and server.messages == []


async def test_an_unknown_mailbox_is_not_retried(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    failed = await refused(settings_for(server, smtp_ca, to=["unknown@example.com"]))
    assert not failed.retryable and "550" in failed.reason and "unknown@example.com" in failed.reason


async def test_a_greylisting_refusal_is_retried(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    failed = await refused(settings_for(server, smtp_ca, to=["greylisted@example.com"]))
    assert failed.retryable and "451" in failed.reason


async def test_one_refused_recipient_among_others_is_named_in_the_detail(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    result = await send(settings_for(server, smtp_ca, to=["ops@example.com", "unknown@example.com"]))
    assert "sent to 1 of 2" in result.detail and "unknown@example.com: 550" in result.detail
    assert server.envelopes == [("pulser@example.com", ["ops@example.com"])]


async def test_an_untrusted_certificate_is_not_retried_and_names_ca_cert(smtp_server, smtp_ca):
    server = await smtp_server("tls")
    failed = await refused(settings_for(server, smtp_ca, ca_cert=None))
    assert not failed.retryable and "certificate is not trusted" in failed.reason and "ca_cert" in failed.reason


async def test_starttls_required_from_a_server_without_it_is_not_retried(smtp_server, smtp_ca):
    server = await smtp_server("none")
    failed = await refused(settings_for(server, smtp_ca, security="starttls"))
    assert not failed.retryable and "STARTTLS" in failed.reason and "security" in failed.reason


async def test_a_refused_connection_is_retried(smtp_server, smtp_ca):
    server = await smtp_server("none")
    await server.stop()
    failed = await refused(settings_for(server, smtp_ca))
    assert failed.retryable and "could not be reached" in failed.reason


async def test_a_server_that_never_greets_times_out_and_is_retried(smtp_server, smtp_ca):
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    try:
        port = silent.sockets[0].getsockname()[1]
        failed = await refused({"host": "127.0.0.1", "port": port, "security": "none", "from": "pulser@example.com", "to": ["ops@example.com"], "timeout": 0.3})
    finally:
        silent.close()
    assert failed.retryable and "did not answer within 0.3 s" in failed.reason


async def test_a_page_without_any_recipient_is_not_retried(smtp_server, smtp_ca):
    server = await smtp_server("none")
    failed = await refused(settings_for(server, smtp_ca, to=[]))
    assert not failed.retryable and "no recipient" in failed.reason


def test_a_test_message_gets_a_fresh_message_id_each_time():
    from alerts.outbound.channels.email import message_id

    page = sample_page(action="test", dedup_key="pulser-test")
    assert message_id(page, "pulser@example.com") != message_id(page, "pulser@example.com")
