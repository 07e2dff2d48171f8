"""tests/hubserver.py serves what huggingface_hub reads, byte for byte, and its faults are visible.

The hub client runs in a subprocess: huggingface_hub reads HF_ENDPOINT (and the suite's
HF_HUB_OFFLINE=1) when it is imported.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hubserver import HubServer, git_blob_sha1

CLIP = "openai/clip-vit-base-patch32"
CARD_REPO = "acme/card-only"
CARD_FILES = {
    "README.md": b"---\nlicense: apache-2.0\ntags: [tiny]\n---\n# A tiny repo\n",
    "weights/extra.bin": bytes(range(256)) * 40,
    "weights/notes/readme.txt": b"nested text\n",
}
BIG_REPO = "acme/big"  # one file over huggingface_hub's 10 MB read chunk, so a cut download resumes
BIG_FILES = {"big.bin": bytes(range(256)) * (44 * 1024)}
CARD_COMMIT = "0123456789abcdef0123456789abcdef01234567"  # a pinned commit id, as given to HubServer(commits=)
RAW_FILES = {"owner/repo/0123abc/weights/model.pt": bytes(range(256)) * 400, "owner/repo/0123abc/stats.txt": b"x" * 999}

MAIN_CLIENT = r"""
import json, sys
from pathlib import Path
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

out = Path(sys.argv[1])
api = HfApi()
result = {"snapshot": snapshot_download("openai/clip-vit-base-patch32", revision="main", local_dir=out / "snap")}
info = api.model_info("openai/clip-vit-base-patch32", files_metadata=True)
result["sha"] = info.sha
result["license"] = info.card_data.license if info.card_data else None
result["siblings"] = {s.rfilename: {"size": s.size, "blob_id": s.blob_id,
                                    "sha256": s.lfs.sha256 if s.lfs else None,
                                    "lfs_size": s.lfs.size if s.lfs else None} for s in info.siblings}
card = api.model_info("acme/card-only", files_metadata=True)
result["card_license"] = card.card_data.license
result["card_files"] = sorted(s.rfilename for s in card.siblings)
result["card_sha"] = card.sha
result["card_tree"] = sorted(f.path for f in api.list_repo_tree("acme/card-only", recursive=True))
result["card_tree_weights"] = sorted(
    (f.path, type(f).__name__) for f in api.list_repo_tree("acme/card-only", path_in_repo="weights"))
result["card_paths_info"] = sorted(
    (f.path, type(f).__name__) for f in api.get_paths_info("acme/card-only", ["README.md", "weights", "nope"]))
result["card_snapshot"] = snapshot_download("acme/card-only", revision=card.sha, local_dir=out / "card")
result["one"] = hf_hub_download("openai/clip-vit-base-patch32", "config.json", revision=info.sha)
result["one_local"] = hf_hub_download("acme/card-only", "weights/extra.bin", local_dir=out / "one")
errors = {}
for name, call in [
    ("repo", lambda: api.model_info("nobody/nothing")),
    ("revision", lambda: hf_hub_download("openai/clip-vit-base-patch32", "config.json", revision="v9")),
    ("entry", lambda: hf_hub_download("openai/clip-vit-base-patch32", "missing.json")),
]:
    try:
        call()
        errors[name] = None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as exc:
        errors[name] = type(exc).__name__
result["errors"] = errors
print(json.dumps(result))
"""

DOWNLOAD_CLIENT = r"""
import json, sys
from huggingface_hub import hf_hub_download
out = sys.argv[1]
print(json.dumps([hf_hub_download(repo, name, local_dir=f"{out}/{repo}")
                  for repo, name in (arg.split("::") for arg in sys.argv[2:])]))
"""


def run_client(hub: HubServer, code: str, home: Path, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=hub.client_env(home), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".cache" not in p.relative_to(folder).parts
    }


@pytest.fixture(scope="module")
def clip_folder(tiny_models) -> Path:
    folder = tiny_models / CLIP
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    return folder


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw")
    for name, data in RAW_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def hub(clip_folder, raw_folder):
    repos = {CLIP: clip_folder, CARD_REPO: CARD_FILES, BIG_REPO: BIG_FILES}
    with HubServer(repos, raw=raw_folder, licenses={CLIP: "mit"}) as server:
        yield server


@pytest.fixture(scope="module")
def main_run(clip_folder, raw_folder, tmp_path_factory):
    """One client process: snapshot_download, model_info, list_repo_tree, hf_hub_download, errors."""
    out = tmp_path_factory.mktemp("client")
    with HubServer(
        {CLIP: clip_folder, CARD_REPO: CARD_FILES},
        raw=raw_folder,
        licenses={CLIP: "mit"},
        commits={CARD_REPO: CARD_COMMIT},
    ) as server:
        result = run_client(server, MAIN_CLIENT, out / "home", str(out))
    return server, result


def test_snapshot_download_reproduces_the_folder_byte_for_byte(main_run, clip_folder):
    server, result = main_run
    assert files_of(Path(result["snapshot"])) == files_of(clip_folder)
    # it listed the tree at the commit model_info named, then fetched each file at that commit
    commit = server.commit(CLIP)
    assert server.requests_for(f"/tree/{commit}", "GET")
    for name in files_of(clip_folder):
        assert server.requests_for(f"/{CLIP}/resolve/{commit}/{name}", "GET")


def test_model_info_files_metadata_matches_the_files(main_run, clip_folder):
    server, result = main_run
    assert result["sha"] == server.commit(CLIP) and len(result["sha"]) == 40
    assert result["license"] == "mit"
    files = files_of(clip_folder)
    assert set(result["siblings"]) == set(files)
    for name, data in files.items():
        sibling = result["siblings"][name]
        assert sibling["size"] == len(data)
        if name.endswith(".safetensors"):  # LFS: sha256 of the content, blob id of the pointer
            assert sibling["sha256"] == hashlib.sha256(data).hexdigest()
            assert sibling["lfs_size"] == len(data)
            assert sibling["blob_id"] != git_blob_sha1(data)
        else:
            assert sibling["sha256"] is None
            assert sibling["blob_id"] == git_blob_sha1(data)


def test_in_memory_repo_with_card_license_pinned_commit_and_nested_files(main_run):
    server, result = main_run
    assert result["card_license"] == "apache-2.0"
    assert result["card_sha"] == CARD_COMMIT
    assert result["card_files"] == sorted(CARD_FILES)
    assert result["card_tree"] == sorted([*CARD_FILES, "weights", "weights/notes"])
    assert result["card_tree_weights"] == [["weights/extra.bin", "RepoFile"], ["weights/notes", "RepoFolder"]]
    assert result["card_paths_info"] == [["README.md", "RepoFile"], ["weights", "RepoFolder"]]
    assert files_of(Path(result["card_snapshot"])) == CARD_FILES
    # a commit-id revision skips model_info: straight to the tree at that commit
    assert server.requests_for(f"/acme/card-only/tree/{CARD_COMMIT}", "GET")


def test_hf_hub_download_fetches_one_file(main_run, clip_folder):
    _, result = main_run
    cached = Path(result["one"])
    assert cached.name == "config.json" and "models--openai--clip-vit-base-patch32" in cached.parts
    assert cached.read_bytes() == (clip_folder / "config.json").read_bytes()
    assert Path(result["one_local"]).read_bytes() == CARD_FILES["weights/extra.bin"]


def test_missing_repo_revision_and_file_raise_the_hubs_errors(main_run):
    _, result = main_run
    assert result["errors"] == {
        "repo": "RepositoryNotFoundError",
        "revision": "RevisionNotFoundError",
        "entry": "RemoteEntryNotFoundError",
    }


def test_resolve_headers_carry_commit_etag_and_linked_size(hub, clip_folder):
    data = (clip_folder / "model.safetensors").read_bytes()
    request = urllib.request.Request(hub.url(CLIP, "model.safetensors"), method="HEAD")
    with urllib.request.urlopen(request) as response:
        headers = response.headers
    assert headers["X-Repo-Commit"] == hub.commit(CLIP)
    assert headers["ETag"].strip('"') == headers["X-Linked-Etag"].strip('"') == hashlib.sha256(data).hexdigest()
    assert int(headers["X-Linked-Size"]) == int(headers["Content-Length"]) == len(data)
    assert headers["Accept-Ranges"] == "bytes"
    config = (clip_folder / "config.json").read_bytes()
    with urllib.request.urlopen(urllib.request.Request(hub.url(CLIP, "config.json"), method="HEAD")) as response:
        assert response.headers["ETag"].strip('"') == git_blob_sha1(config)
        assert response.headers["X-Linked-Etag"] is None


@pytest.mark.parametrize("kind", ["resolve", "raw"])
def test_range_requests_answer_206(hub, clip_folder, kind):
    if kind == "resolve":
        url, data = hub.url(CLIP, "model.safetensors"), (clip_folder / "model.safetensors").read_bytes()
    else:
        name = "owner/repo/0123abc/weights/model.pt"
        url, data = hub.raw_base + name, RAW_FILES[name]
    for header, expected in [
        ("bytes=10-19", data[10:20]),
        (f"bytes={len(data) - 5}-", data[-5:]),
        ("bytes=-7", data[-7:]),
    ]:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": header})) as response:
            assert response.status == 206
            assert response.read() == expected
            assert response.headers["Content-Range"].endswith(f"/{len(data)}")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(urllib.request.Request(url, headers={"Range": f"bytes={len(data)}-"}))
    assert error.value.code == 416
    hub.no_range(url.rsplit("/", 1)[1])
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"})) as response:
        assert response.status == 200 and response.read() == data


def test_raw_files_download_with_urllib(hub):
    for name, data in RAW_FILES.items():
        with urllib.request.urlopen(hub.raw_base + name) as response:
            assert response.read() == data
        with urllib.request.urlopen(urllib.request.Request(hub.raw_base + name, method="HEAD")) as response:
            assert int(response.headers["Content-Length"]) == len(data)
            assert response.headers["ETag"].strip('"') == git_blob_sha1(data)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(hub.raw_base + "owner/repo/0123abc/nothing.pt")
    assert error.value.code == 404
    assert [r.method for r in hub.requests_for("stats.txt")] == ["GET", "HEAD"]


def test_raw_faults_cut_corrupt_no_length_fail(hub):
    name = "owner/repo/0123abc/weights/model.pt"
    data = RAW_FILES[name]
    hub.cut_after("model.pt", 1000)
    with urllib.request.urlopen(hub.raw_base + name) as response:
        assert int(response.headers["Content-Length"]) == len(data)
        with pytest.raises(http.client.IncompleteRead) as error:
            response.read()
    assert error.value.partial == data[:1000]
    with urllib.request.urlopen(hub.raw_base + name) as response:  # times=1: the next GET is whole
        assert response.read() == data

    hub.corrupt("model.pt", times=1)
    with urllib.request.urlopen(hub.raw_base + name) as response:
        body = response.read()
    assert len(body) == len(data) and body != data and git_blob_sha1(body) != git_blob_sha1(data)

    hub.no_content_length("model.pt", times=1)
    with urllib.request.urlopen(hub.raw_base + name) as response:
        assert response.headers["Content-Length"] is None
        assert response.read() == data

    hub.fail("model.pt", status=503)
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(hub.raw_base + name)
    assert error.value.code == 503


@pytest.mark.slow
def test_hub_client_retries_cut_downloads_and_does_not_notice_corruption(hub, clip_folder, tmp_path):
    weights = (clip_folder / "model.safetensors").read_bytes()
    config = (clip_folder / "config.json").read_bytes()
    big = BIG_FILES["big.bin"]
    cut = 10 * 1024 * 1024 + 12345
    hub.cut_after("/model.safetensors", 100_000)
    hub.cut_after("/big.bin", cut)
    hub.corrupt("/config.json")
    paths = run_client(
        hub,
        DOWNLOAD_CLIENT,
        tmp_path / "home",
        str(tmp_path / "out"),
        f"{CLIP}::model.safetensors",
        f"{CLIP}::config.json",
        f"{BIG_REPO}::big.bin",
    )
    # cut once, then fetched again from byte 0: huggingface_hub reads 10 MB chunks, so a shorter
    # partial never reaches its file
    assert Path(paths[0]).read_bytes() == weights
    assert [r.headers.get("Range") for r in hub.requests_for("/model.safetensors", "GET")] == [None, None]
    # past the first chunk it continues with a Range request, answered 206
    assert Path(paths[2]).read_bytes() == big
    assert [r.headers.get("Range") for r in hub.requests_for("/big.bin", "GET")] == [None, "bytes=10485760-"]
    # huggingface_hub checks only the size: a verifier must compare the ETag itself
    got = Path(paths[1]).read_bytes()
    assert len(got) == len(config) and git_blob_sha1(got) != git_blob_sha1(config)


def test_cdn_redirect_serves_lfs_files_from_another_host(clip_folder, tmp_path):
    with HubServer({CLIP: clip_folder}, cdn_redirect=True) as hub:
        paths = run_client(
            hub,
            DOWNLOAD_CLIENT,
            tmp_path / "home",
            str(tmp_path / "out"),
            f"{CLIP}::model.safetensors",
            f"{CLIP}::config.json",
        )
        assert [Path(p).read_bytes() for p in paths] == [
            (clip_folder / n).read_bytes() for n in ("model.safetensors", "config.json")
        ]
        assert hub.requests_for("/model.safetensors", "GET")[0].path.startswith("/cdn/")
        assert hub.requests_for("/config.json", "GET")[0].path.startswith(f"/{CLIP}/resolve/")
