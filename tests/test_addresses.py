"""The address rules of vemoclap.addresses, on this Python and on Python 3.13 (stdlib only).

The module is loaded from its file, without the vemoclap package, so that the same cases run under
a bare Python 3.13 in a subprocess: what ``ipaddress`` calls private or global changed between
3.11 and 3.13, and the guard must not change with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[1] / "vemoclap" / "addresses.py"

# Every IPv6 form of a private IPv4 address the issue lists, and the plain ones: all refused.
REFUSED = [
    "10.0.0.1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "64:ff9b::10.0.0.1",  # NAT64 (the network's 10.0.0.1 on an IPv6-only subnet)
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:a00:1::",  # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "::ffff:0:10.0.0.1",  # SIIT
    "::ffff:10.0.0.1",  # IPv4-mapped
    "::ffff:127.0.0.1",
    "::10.0.0.1",  # IPv4-compatible
    "::169.254.169.254",
    "2001:0:a00:1::",  # Teredo, server 10.0.0.1
    "2001:0:808:808::f5ff:fffe",  # Teredo, client 10.0.0.1 (stored inverted)
    "fec0::1",  # site-local
    "fe80::1",
    "fe80::1%lo",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",
    "not an address",
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "192.88.99.1",  # the namespace tests' stand-in for a public address
    "2606:4700:4700::1111",
    "64:ff9b::8.8.8.8",  # NAT64 of a public address
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "::ffff:8.8.8.8",
    "2001:0:808:808::f7f7:f7f7",  # Teredo, server and client 8.8.8.8
]


def _load():
    spec = importlib.util.spec_from_file_location("vemoclap_addresses_alone", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verdicts(module) -> dict[str, str | None]:
    return {address: module.refusal(address) for address in REFUSED + ALLOWED}


def test_every_ipv6_form_of_a_private_ipv4_address_is_refused():
    module = _load()
    verdicts = _verdicts(module)
    assert [a for a in REFUSED if verdicts[a] is None] == []
    assert {a: verdicts[a] for a in ALLOWED if verdicts[a] is not None} == {}
    assert "NAT64 form of 10.0.0.1, private" in verdicts["64:ff9b::10.0.0.1"]
    assert "Teredo client form of 10.0.0.1" in verdicts["2001:0:808:808::f5ff:fffe"]


def test_the_guard_uses_these_rules():
    from vemoclap import netguard

    assert not netguard.is_public("64:ff9b::10.0.0.1") and netguard.is_public("64:ff9b::8.8.8.8")
    guard = netguard.Guard()
    with pytest.raises(netguard.AddressRefused):
        guard.check("2002:a00:1::", 80)
    assert guard.refused == ["[2002:a00:1::]:80"]


def _python313() -> list[str] | None:
    if shutil.which("pyenv") is None and shutil.which("python") is None:
        return None
    for argv, env in ((["python"], {"PYENV_VERSION": "3.13.0"}), (["python3.13"], {})):
        try:
            done = subprocess.run(
                [*argv, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                env={**os.environ, **env},
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == "(3, 13)":
            return argv if not env else ["env", "PYENV_VERSION=3.13.0", *argv]
    return None


def test_the_same_verdicts_on_python_3_13():
    python = _python313()
    if python is None:
        pytest.skip("SKIPPED LOUDLY: no Python 3.13 here (PYENV_VERSION=3.13.0 python); the 3.13 check did not run")
    code = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('a', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps({a: m.refusal(a) for a in json.loads(sys.argv[2])}))\n"
    )
    done = subprocess.run(
        [*python, "-c", code, str(MODULE), json.dumps(REFUSED + ALLOWED)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _verdicts(_load())
