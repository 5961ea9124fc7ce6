"""The offline guard: every Python process started by the test command refuses the network.

Loaded in two ways:

* the test session itself (``conftest.py`` calls :func:`install`), and
* every Python process the test session starts — notebook kernels under ``pytest --nbval``,
  subprocesses, their children — through ``sitecustomize.py`` in this folder, which Python imports
  at start-up when this folder is on ``PYTHONPATH`` and ``COURSE_NETWORK_GUARD=1`` (``conftest.py``
  sets both in the environment those processes inherit).

What is refused (raising :class:`NetworkAccessError`, before any packet leaves): TCP/UDP
``connect``/``connect_ex`` and UDP ``sendto``/``sendmsg`` to any non-loopback address, and DNS
look-ups of any name other than ``localhost``. Loopback (127.0.0.0/8, ::1) and Unix sockets stay
open: nbval talks to its kernels over 127.0.0.1, and the browser test serves the site there.
"""
from __future__ import annotations

import ipaddress
import socket

MESSAGE = "network access attempted"
ENV_FLAG = "COURSE_NETWORK_GUARD"


class NetworkAccessError(RuntimeError):
    """Raised when code under test tries to reach the network (the course must run offline)."""


def is_local(address) -> bool:
    """True for Unix-socket paths, ``localhost`` and loopback IP addresses."""
    if isinstance(address, (str, bytes)):          # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return True                                # other families (netlink, ...) are not the network
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, address) -> None:
    raise NetworkAccessError(f"{MESSAGE}: {what} {address!r}. The course runs offline: data and weights "
                             "come from the pinned packages in requirements-data.txt (see course_lib.data)")


_real = {"connect": socket.socket.connect, "connect_ex": socket.socket.connect_ex,
         "sendto": socket.socket.sendto, "sendmsg": socket.socket.sendmsg,
         "getaddrinfo": socket.getaddrinfo}


def _connect(self, address):
    if not is_local(address):
        _refuse("connect to", address)
    return _real["connect"](self, address)


def _connect_ex(self, address):
    if not is_local(address):
        _refuse("connect to", address)
    return _real["connect_ex"](self, address)


def _sendto(self, data, *args):
    address = args[-1]                             # sendto(data, address) or sendto(data, flags, address)
    if not is_local(address):
        _refuse("sendto", address)
    return _real["sendto"](self, data, *args)


def _sendmsg(self, buffers, ancdata=(), flags=0, address=None):
    if address is not None and not is_local(address):
        _refuse("sendmsg to", address)
    if address is None:
        return _real["sendmsg"](self, buffers, ancdata, flags)
    return _real["sendmsg"](self, buffers, ancdata, flags, address)


def _getaddrinfo(host, *args, **kwargs):
    if not is_local((host,)):
        _refuse("DNS lookup of", host)
    return _real["getaddrinfo"](host, *args, **kwargs)


def install() -> None:
    """Patch ``socket`` in this process (idempotent)."""
    socket.socket.connect = _connect
    socket.socket.connect_ex = _connect_ex
    socket.socket.sendto = _sendto
    socket.socket.sendmsg = _sendmsg
    socket.getaddrinfo = _getaddrinfo


def uninstall() -> None:
    """Restore the real ``socket`` functions."""
    socket.socket.connect = _real["connect"]
    socket.socket.connect_ex = _real["connect_ex"]
    socket.socket.sendto = _real["sendto"]
    socket.socket.sendmsg = _real["sendmsg"]
    socket.getaddrinfo = _real["getaddrinfo"]
