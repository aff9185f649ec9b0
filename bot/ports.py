"""Turning a failed bind into one line that names the setting to change.

The kernel only says "address already in use"; the operator needs to know which of Pulser's
listeners (the sidecar, the sandbox) hit it and which variable moves it.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from typing import Iterator


class BindError(RuntimeError):
    """A listener could not bind; str() is the one line shown to the operator."""

    def __init__(self, message: str, *, variable: str):
        super().__init__(message)
        self.variable = variable


def _explain(exc: OSError, host: str, port: int, host_variable: str, port_variable: str) -> BindError | None:
    if exc.errno == errno.EADDRINUSE:
        return BindError(
            f"{port_variable}={port} is already in use on {host}: stop what listens there, "
            f"or set {port_variable} to a free port (0 picks one)",
            variable=port_variable,
        )
    if exc.errno == errno.EACCES:
        return BindError(
            f"{port_variable}={port} may not be opened by this user (ports below 1024 need privileges): "
            f"set {port_variable} to a port from 1024 to 65535",
            variable=port_variable,
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return BindError(
            f"{host_variable}={host} is not an address of this machine: use 127.0.0.1, or 0.0.0.0 for every interface",
            variable=host_variable,
        )
    return None


@contextlib.contextmanager
def binding(host: str, port: int, *, host_variable: str, port_variable: str) -> Iterator[None]:
    """Around a listener's start: a bind failure becomes a BindError naming the variable."""
    try:
        yield
    except OSError as exc:
        explained = _explain(exc, host, port, host_variable, port_variable)
        if explained is None:
            raise
        raise explained from None
