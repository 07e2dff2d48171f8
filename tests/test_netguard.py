"""The network guard, proven in a private network namespace (``unshare -n -m``) made by the test.

Inside it: loopback only, with a "public" address (one Python judges globally routable) and the
cloud metadata address 169.254.169.254 added to ``lo``; the mount namespace gets its own
resolv.conf, hosts and nsswitch.conf pointing at a tiny DNS server of tests/netns_driver.py.
Canary servers on 127.0.0.1 and 169.254.169.254 log every request: vemoclap, run in the namespace
as a subprocess, must never reach them through redirects, HTML embeds or DNS rebinding, and a body
without Content-Length must stop at the byte budget. No packet leaves the namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vemoclap import netguard

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("netns_driver.py")
V6_FORMS = {  # the same as tests/netns_driver.py's: IPv6 forms of 10.0.0.1, and site-local
    "nat64": "64:ff9b::a00:1",
    "6to4": "2002:a00:1::1",
    "siit": "::ffff:0:a00:1",
    "compatible": "::a00:1",
    "teredo": "2001:0:a00:1::1",
    "site_local": "fec0::1",
}
ENDLESS_BYTES = 1024 * 2**20  # never sent whole: the server blocks once the client stops reading
BUDGET = 2 * 2**20


def _namespace_problem() -> str | None:
    if sys.platform != "linux":
        return "network namespaces need Linux"
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (util-linux / iproute2)"
    try:
        done = subprocess.run(
            ["unshare", "-n", "-m", "sh", "-c", "ip link set lo up && mount --bind /etc/hosts /etc/hosts"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare could not run ({exc})"
    if done.returncode != 0:
        return f"unshare -n -m is not permitted here ({' '.join(done.stderr.split())[:160]}); needs root or user namespaces"
    return None


PROBLEM = _namespace_problem()
pytestmark = pytest.mark.skipif(PROBLEM is not None, reason=f"namespace network tests skipped: {PROBLEM}")

# Run by one child process in the namespace: each case through the Python API, one JSON line each.
API_CASES = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from vemoclap.sources import resolve_source, DownloadLimits
    from vemoclap.live import file_frames
    from vemoclap.streams import stream_frames
    from vemoclap.training.dataset import load_dataset

    out, budget = Path(sys.argv[1]), int(sys.argv[2])
    V6_FORMS = json.loads(sys.argv[4])

    def manifest(link):
        (out / "ds").mkdir(parents=True, exist_ok=True)
        (out / "ds" / "videos.csv").write_text(f"path,label\\n{link},joy\\n")
        return out / "ds" / "videos.csv"

    def with_proxy(run):
        proxy = "http://127.0.0.1:8080"
        names = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
        os.environ.update({key: proxy for key in names})
        try:
            return run()
        finally:
            for key in names:
                os.environ.pop(key, None)

    base = "http://pub.test:8080"
    cases = {
        "control": lambda: resolve_source(base + "/clip.mp4", directory=out / "control"),
        "public_address_as_typed": lambda: resolve_source(sys.argv[3] + "/clip.mp4", directory=out / "typed"),
        "redirect_loopback": lambda: resolve_source(base + "/to-loopback.mp4", directory=out / "x"),
        "redirect_metadata": lambda: resolve_source(base + "/to-metadata.mp4", directory=out / "x"),
        "redirect_localhost_name": lambda: resolve_source(base + "/to-localhost-name.mp4", directory=out / "x"),
        "public_hop_then_private": lambda: resolve_source(base + "/hop.mp4", directory=out / "x"),
        "embed_loopback": lambda: resolve_source(base + "/embed.html", directory=out / "x"),
        "embed_metadata": lambda: resolve_source(base + "/embed-metadata.html", directory=out / "x"),
        "rebinding": lambda: resolve_source("http://rebind.test:8080/clip.mp4", directory=out / "x"),
        "endless": lambda: resolve_source(base + "/endless.mp4", directory=out / "endless",
                                          limits=DownloadLimits(max_bytes=budget)),
        "stream_redirect": lambda: next(iter(stream_frames(base + "/to-loopback.mp4"))),
        "rtsp_private_name": lambda: next(iter(stream_frames("rtsp://localhost:8554/live"))),
        "rtsp_redirect": lambda: next(iter(stream_frames("rtsp://pub.test:8554/live"))),
        # Proxy settings are ignored: through a proxy (here the loopback canary) the guard could only
        # check the proxy's address. Without that, both would go to the canary or be refused.
        "download_ignores_proxy": lambda: with_proxy(lambda: resolve_source(base + "/clip.mp4",
                                                                            directory=out / "proxy")),
        "stream_ignores_proxy": lambda: with_proxy(lambda: next(iter(stream_frames(base + "/live.ts")))),
        "stream_mp4_index_last": lambda: next(iter(stream_frames(base + "/clip.mp4"))),
        "manifest_redirect": lambda: load_dataset(manifest(base + "/to-metadata.mp4")),
        # IPv6 forms of 10.0.0.1 (and site-local): typed, behind a redirect, embedded, as an AAAA answer
        **{f"v6_typed_{form}": (lambda a=address: resolve_source(f"http://[{a}]:8080/clip.mp4", directory=out / "x"))
           for form, address in V6_FORMS.items()},
        **{f"v6_redirect_{form}": (lambda f=form: resolve_source(base + f"/to-{f}.mp4", directory=out / "x"))
           for form in V6_FORMS},
        "v6_embed_nat64": lambda: resolve_source(base + "/embed-nat64.html", directory=out / "x"),
        "v6_aaaa_nat64": lambda: resolve_source("http://nat64.test:8080/clip.mp4", directory=out / "x"),
        "v6_redirect_aaaa_nat64": lambda: resolve_source(base + "/to-nat64-name.mp4", directory=out / "x"),
        "v6_stream_redirect_nat64": lambda: next(iter(stream_frames(base + "/to-nat64.mp4"))),
        # Control: the IPv6 canary answers when allowed (so the refusals above are the guard's doing)
        "v6_opt_in_control": lambda: resolve_source(f"http://[{V6_FORMS['nat64']}]:8080/v6-opt-in.mp4",
                                                    directory=out / "v6-opt-in", allow_private=True),
        # Control: FFmpeg left alone follows an RTSP redirect to 127.0.0.1 (the canary logs it).
        "rtsp_unguarded_control": lambda: next(iter(file_frames(sys.argv[3].replace("http", "rtsp").replace(
            "8080", "8554") + "/unguarded", options={"rtsp_transport": "tcp"}))),
    }
    for name, run in cases.items():
        try:
            value = run()
            print(json.dumps({"case": name, "ok": str(value) if isinstance(value, Path) else "frame"}), flush=True)
        except Exception as exc:
            print(json.dumps({"case": name, "error": type(exc).__name__, "message": str(exc)}), flush=True)
""")


@pytest.fixture(scope="module")
def namespace_run(tmp_path_factory):
    from vemoclap.testing import make_video

    work = tmp_path_factory.mktemp("netns")
    public = next((a for a in ("192.88.99.1", "192.0.0.9") if netguard.is_public(a)), None)
    if public is None:
        pytest.skip("no test address that this Python judges public")
    from vemoclap.testing.media import remux

    video = make_video(work / "clip.mp4", duration=1.0, audio="tone")
    stream = remux(video, work / "live.ts", format="mpegts")
    (work / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n")
    (work / "hosts").write_text("127.0.0.1 localhost\n::1 localhost\n")
    (work / "nsswitch.conf").write_text("hosts: files dns\n")
    (work / "api_cases.py").write_text(API_CASES)
    (work / "models").mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VEMOCLAP_CACHE": str(work / "cache"),
        "HOME": str(work / "home"),
        "VEMOCLAP_LOG_DIR": str(work / "logs"),
    }
    env.pop("http_proxy", None), env.pop("https_proxy", None), env.pop("HTTP_PROXY", None), env.pop("HTTPS_PROXY", None)
    cli = [sys.executable, "-m", "vemoclap.cli", "analyze"]
    tail = ["--extractors", "clip", "--no-classifier", "--models-dir", str(work / "models"), "-q"]
    config = {
        "public": public,
        "video": str(video),
        "stream": str(stream),
        "endless_bytes": ENDLESS_BYTES,
        "report": str(work / "report.json"),
        "cases": {
            "api": {
                "argv": [
                    sys.executable,
                    str(work / "api_cases.py"),
                    str(work / "out"),
                    str(BUDGET),
                    f"http://{public}:8080",
                    json.dumps(V6_FORMS),
                ],
                "env": env,
                "timeout": 300,
            },
            "cli_redirect_metadata": {"argv": cli + ["http://pub.test:8080/to-metadata.mp4"] + tail, "env": env},
            "cli_embed": {"argv": cli + ["http://pub.test:8080/embed.html"] + tail, "env": env},
            # last, so that it cannot hide a refusal above: the opt-in really reaches the canary
            # through the public Python API (it used to raise TypeError with allow_private)
            "api_opt_in": {
                "argv": [
                    sys.executable,
                    "-c",
                    "import sys, vemoclap; result = vemoclap.analyze('http://pub.test:8080/opt-in.mp4',"
                    " allow_private=True, extractors=['clip'], models_dir=sys.argv[1], classifier=None,"
                    " skip_unavailable=True); print(result.path); print(sorted(result.missing))",
                    str(work / "models"),
                ],
                "env": env,
            },
        },
    }
    (work / "config.json").write_text(json.dumps(config))
    script = "; ".join(
        [
            "set -e",
            "ip link set lo up",
            f"ip addr add {public}/32 dev lo",
            "ip addr add 169.254.169.254/32 dev lo",
            "ip addr add 10.0.0.1/32 dev lo",
            *[f"ip -6 addr add {address}/128 dev lo nodad" for address in V6_FORMS.values()],
            f"mount --bind {work / 'resolv.conf'} /etc/resolv.conf",
            f"mount --bind {work / 'hosts'} /etc/hosts",
            f"mount --bind {work / 'nsswitch.conf'} /etc/nsswitch.conf",
            f"exec {sys.executable} {DRIVER} {work / 'config.json'}",
        ]
    )
    done = subprocess.run(["unshare", "-n", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((work / "report.json").read_text())
    api = report["cases"]["api"]
    assert api["rc"] == 0, api["stderr"][-3000:]
    rows = [json.loads(line) for line in api["stdout"].splitlines() if line.startswith("{")]
    report["api"] = {row["case"]: row for row in rows}
    report["public"] = public
    report["work"] = work
    return report


@pytest.mark.slow
def test_the_setup_works_a_public_link_is_downloaded(namespace_run):
    control = namespace_run["api"]["control"]
    assert "ok" in control, control
    assert Path(control["ok"]).read_bytes() == Path(namespace_run["work"] / "clip.mp4").read_bytes()
    assert "ok" in namespace_run["api"]["public_address_as_typed"]
    assert ["pub.test", "A", namespace_run["public"]] in namespace_run["dns"]  # names went through our DNS


@pytest.mark.parametrize(
    "case",
    [
        "redirect_loopback",
        "redirect_metadata",
        "redirect_localhost_name",
        "public_hop_then_private",
        "embed_loopback",
        "embed_metadata",
        "rebinding",
        "stream_redirect",
        "rtsp_private_name",
        "rtsp_redirect",
    ],
)
def test_private_addresses_are_refused_on_every_hop(namespace_run, case):
    row = namespace_run["api"][case]
    assert row.get("error") == "SourceError", row
    assert ("private or local address" in row["message"] or "redirects" in row["message"]) and "\n" not in row[
        "message"
    ]


V6_CASES = [f"v6_{how}_{form}" for how in ("typed", "redirect") for form in V6_FORMS] + [
    "v6_embed_nat64",
    "v6_aaaa_nat64",
    "v6_redirect_aaaa_nat64",
    "v6_stream_redirect_nat64",
]


@pytest.mark.parametrize("case", V6_CASES)
def test_ipv6_forms_of_private_addresses_are_refused(namespace_run, case):
    row = namespace_run["api"][case]
    assert row.get("error") == "SourceError", row
    assert "private or local address" in row["message"] and "\n" not in row["message"], row


def test_no_ipv6_form_reached_its_canary_except_the_opt_in(namespace_run):
    assert "ok" in namespace_run["api"]["v6_opt_in_control"], namespace_run["api"]["v6_opt_in_control"]
    logs = namespace_run["logs"]
    assert set(logs["v6"]) <= {"GET /v6-opt-in.mp4", "HEAD /v6-opt-in.mp4"} and logs["v6"], logs["v6"]
    assert logs["private"] == []
    assert ["nat64.test", "AAAA", V6_FORMS["nat64"]] in namespace_run["dns"]


def test_a_dataset_manifest_link_takes_the_same_guarded_path(namespace_run):
    row = namespace_run["api"]["manifest_redirect"]
    assert row.get("error") == "DatasetError" and "line 2" in row["message"], row
    assert "private or local address (169.254.169.254:8080)" in row["message"]


def test_ffmpeg_would_follow_an_rtsp_redirect_but_the_relay_stops_it(namespace_run):
    assert namespace_run["api"]["rtsp_redirect"]["message"].startswith(
        "rtsp://pub.test:8554/live: the stream redirects (RTSP 302) to rtsp://127.0.0.1"
    )
    # the unguarded control reached the RTSP canary; the guarded run did not
    assert namespace_run["rtsp"]["canary"] == ["OPTIONS rtsp://127.0.0.1:8554/unguarded-target RTSP/1.0"], (
        namespace_run["rtsp"]
    )


@pytest.mark.parametrize("case", ["download_ignores_proxy", "stream_ignores_proxy"])
def test_proxy_settings_are_ignored(namespace_run, case):
    assert "ok" in namespace_run["api"][case], namespace_run["api"][case]


def test_a_stream_that_cannot_be_read_front_to_back_is_one_line(namespace_run):
    row = namespace_run["api"]["stream_mp4_index_last"]
    assert row.get("error") == "MediaError" and "front to back" in row["message"], row


def test_no_canary_was_ever_reached_except_by_the_opt_in(namespace_run):
    logs = namespace_run["logs"]
    assert logs["metadata"] == []
    # only the opt-in run (the last case) reached the loopback canary, which shows the canary works
    assert logs["loopback"] and set(logs["loopback"]) <= {"GET /opt-in-target.mp4", "HEAD /opt-in-target.mp4"}, logs
    opt_in = namespace_run["cases"]["api_opt_in"]
    assert opt_in["rc"] == 0, opt_in["stderr"][-2000:]
    path, missing = opt_in["stdout"].strip().splitlines()[-2:]
    assert Path(path).is_file() and missing == "['clip']"  # analysed, saying what it lacked


def test_rebinding_second_answer_was_asked_and_refused(namespace_run):
    answers = [q[2] for q in namespace_run["dns"] if q[0] == "rebind.test" and q[1] == "A"]
    assert answers[0] != "127.0.0.1" and "127.0.0.1" in answers[1:], answers


def test_a_body_without_length_stops_at_the_budget(namespace_run):
    row = namespace_run["api"]["endless"]
    assert row.get("error") == "SourceError" and "limit" in row["message"], row
    assert namespace_run["sent"]["endless"] < 64 * 2**20  # the budget plus socket buffers, not the whole body
    endless = namespace_run["work"] / "out" / "endless"
    assert not endless.exists() or not any(endless.iterdir())


@pytest.mark.parametrize("case", ["cli_redirect_metadata", "cli_embed"])
def test_cli_refusals_exit_2_with_one_line(namespace_run, case):
    done = namespace_run["cases"][case]
    lines = [line for line in done["stderr"].splitlines() if line.strip()]
    assert done["rc"] == 2, done
    assert len(lines) == 1 and lines[0].startswith("vemoclap: ") and "private or local address" in lines[0]
