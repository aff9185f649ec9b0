"""`alerts.outbound.channels.email.check`: what saving an e-mail channel from Slack asks first —
does the SMTP server answer, take TLS and the login — against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from alerts.outbound import channels
from alerts.outbound.channels import email


def settings_for(server, smtp_ca, **changes):
    """The channel's settings for a started SmtpStandin, its certificate's CA trusted."""
    return channels.parse_config("email", {
        "host": "127.0.0.1", "port": server.port, "security": server.security, "from": "pulser@example.com",
        "username": server.username, "password": server.password, "ca_cert": smtp_ca.cert_pem.bytes().decode(),
        **changes,
    })


async def test_a_server_that_takes_starttls_and_the_login_is_fine(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    settings = settings_for(server, smtp_ca)
    assert await email.check(settings) is None
    assert server.logins == [server.username] and server.messages == [], "checked, nothing sent"


async def test_a_refused_login_is_said_without_the_password(smtp_server, smtp_ca):
    server = await smtp_server("starttls")
    settings = settings_for(server, smtp_ca, password="wrong-PaSsWoRd")
    problem = await email.check(settings)
    assert "refused the login" in problem and "wrong-PaSsWoRd" not in problem
