"""The offline guard reaches every Python process the test command starts: this process, a
subprocess (and its child), and a Jupyter kernel like the ones nbval runs the notebooks in."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

TEST_NET = "192.0.2.1"                  # TEST-NET-1 (RFC 5737): never routed, so nothing can leak

TCP = f"import socket; socket.create_connection(({TEST_NET!r}, 80), timeout=2)"
UDP = f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ({TEST_NET!r}, 53))"
DNS = "import socket; socket.getaddrinfo('example.org', 443)"
LOOPBACK = textwrap.dedent("""
    import socket
    server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.sendto(b"x", ("127.0.0.1", 9))
    print("loopback ok")
""")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_environment_carries_the_guard_to_child_processes():
    assert os.environ.get("COURSE_NETWORK_GUARD") == "1"
    assert any(p.endswith(os.path.join("tools", "offline")) for p in os.environ["PYTHONPATH"].split(os.pathsep))


@pytest.mark.parametrize("code", [TCP, UDP, DNS], ids=["tcp", "udp-sendto", "dns"])
def test_subprocess_cannot_reach_the_network(code):
    result = _run(code)
    assert result.returncode != 0
    assert "NetworkAccessError: network access attempted" in result.stderr


def test_grandchild_process_is_guarded_too():
    result = _run(f"import subprocess, sys; sys.exit(subprocess.run([sys.executable, '-c', {TCP!r}]).returncode)")
    assert result.returncode != 0
    assert "network access attempted" in result.stderr


def test_subprocess_may_use_loopback():
    result = _run(LOOPBACK)
    assert result.returncode == 0, result.stderr
    assert "loopback ok" in result.stdout


def test_udp_sendto_is_refused_in_the_test_process():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(RuntimeError, match="network access attempted"):
            s.sendto(b"x", (TEST_NET, 53))
    finally:
        s.close()


def test_notebook_kernel_cannot_reach_the_network():
    """A kernel started like nbval starts one (inheriting this environment) refuses the network
    but still talks to its client over loopback."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LOOPBACK), nbformat.v4.new_code_cell(TCP)])
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with pytest.raises(CellExecutionError, match="network access attempted"):
        client.execute()
    assert "loopback ok" in nb.cells[0].outputs[0]["text"]
