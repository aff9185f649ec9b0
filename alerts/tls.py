"""One TLS context for every HTTPS client Pulser keeps (Heroku, deploy webhooks, imported
calendars, pages beyond Slack, the self-ping).

Building a context loads the CA bundle, about 20 ms of CPU each time; every client made its own at
start-up. A built context is only read afterwards, so the clients share this one. It is what httpx
builds by default (certifi's bundle, or SSL_CERT_FILE / SSL_CERT_DIR when set).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
