"""Pull a published run's artifacts, or publish them, with one clear line on what the remote holds.

    python -m rtd.sharing pull [-r REMOTE]          # `make pull`: check the remote, then `dvc pull` what it holds
    python -m rtd.sharing publish URL [-r NAME]     # `make publish REMOTE=URL`: push, then verify in a fresh clone

`dvc pull` alone cannot tell a reviewer whether the remote is down, empty or incomplete: it lists every missing
file and ends with "Is your cache up to date?". `pull` first asks the remote for every cached output of the
committed dvc.lock (the object of each file, the manifest of each directory) and says, in one line, which of
three things is wrong: not reachable, nothing published for this dvc.lock, or which stages are missing; then
it pulls what is there. Exit status: 0 all pulled, 1 some stages missing (the rest pulled), 2 nothing to pull.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from .errors import RTDError


def _repo(root: str):
    from dvc.repo import Repo

    return Repo(root)


def _outputs(repo) -> list[tuple[str, str, str]]:
    """(stage, path, md5) of every cached output recorded in dvc.lock."""
    found = []
    for out in repo.index.outs:
        if out.use_cache and out.hash_info and out.hash_info.value:
            found.append((out.stage.addressing, str(out), out.hash_info.value))
    return sorted(found)


def remote_report(remote: str | None = None, root: str = ".") -> dict:
    """What the remote holds of the committed dvc.lock: {"remote", "url", "total", "missing": {stage: [paths]}}.

    Raises RTDError when the remote is not configured or not reachable."""
    try:
        repo = _repo(root)
        outputs = _outputs(repo)
    except RTDError:
        raise
    except Exception as exc:   # not a DVC project, a corrupted dvc.yaml or dvc.lock: DVC's own message, one line
        raise RTDError(f"cannot read the DVC project in {Path(root).resolve()}: {str(exc).splitlines()[0]}") from exc
    name = remote or repo.config["core"].get("remote")
    if not name:
        raise RTDError("no DVC remote is configured: add one with `dvc remote add -d <name> <url>`")
    try:
        odb = repo.cloud.get_remote_odb(name)
    except Exception as exc:   # dvc raises its own config errors for an unknown name
        raise RTDError(f"remote {name!r} is not usable: {exc}") from exc
    url = repo.config["remote"][name]["url"]
    missing: dict[str, list[str]] = defaultdict(list)
    try:
        _probe(url)
        present = odb.fs.exists([odb.oid_to_path(md5) for _, _, md5 in outputs]) if outputs else []
        for (stage, path, md5), ok in zip(outputs, present):
            if ok and md5.endswith(".dir"):   # a directory: its manifest is there; are all of its files?
                entries = json.loads(odb.fs.cat_file(odb.oid_to_path(md5)))
                ok = all(odb.fs.exists([odb.oid_to_path(e["md5"]) for e in entries]))
            if not ok:
                missing[stage].append(path)
    except Exception as exc:   # connection refused, DNS, timeouts, permissions: one line, the cause named
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RTDError(f"remote {name!r} ({url}) is not reachable: {cause}. Point DVC at a mirror that is: "
                       "`dvc remote add --local -d mirror <url>`") from exc
    return {"remote": name, "url": url, "total": len(outputs), "missing": dict(missing)}


def _probe(url: str, timeout: float = 15.0) -> None:
    """Raise when the remote's host or folder cannot be reached; any HTTP answer (even 403/404) is reachable."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlparse

    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
        except urllib.error.HTTPError:
            pass
        except (urllib.error.URLError, OSError) as exc:
            raise RTDError(f"{getattr(exc, 'reason', exc)}") from exc
    elif scheme in ("", "file") and not Path(urlparse(url).path if scheme else url).is_dir():
        raise RTDError(f"the folder {url} does not exist")


def _summary(report: dict) -> str:
    missing = report["missing"]
    n_missing = sum(len(v) for v in missing.values())
    where = f"remote {report['remote']!r} ({report['url']})"
    if report["total"] == 0:
        return f"{where}: dvc.lock records no cached outputs; nothing to pull"
    if n_missing == report["total"]:
        return (f"{where} holds nothing for this dvc.lock (0 of {report['total']} outputs): no run of this commit "
                "has been published; reproduce it with `make repro`, or ask the maintainers to `make publish`")
    if n_missing:
        stages = sorted(missing)
        shown = ", ".join(stages[:8]) + (f" and {len(stages) - 8} more" if len(stages) > 8 else "")
        return (f"{where} lacks {n_missing} of {report['total']} outputs, of {len(stages)} stage(s): {shown}; "
                "pulling the rest (`dvc repro` rebuilds the missing stages)")
    return f"{where} holds all {report['total']} outputs of this dvc.lock"


def _dvc(*args: str, cwd: str = ".") -> int:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd).returncode


def pull(remote: str | None = None, root: str = ".") -> int:
    """Check the remote, print one line, then `dvc pull` what it holds; the exit status says how it went."""
    report = remote_report(remote, root)
    print(_summary(report), file=sys.stderr)
    n_missing = sum(len(v) for v in report["missing"].values())
    if report["total"] == 0 or n_missing == report["total"]:
        return 2
    # only the complete stages: `dvc pull --allow-missing` still fails on a directory with a missing file
    complete = sorted({stage for stage, _, _ in _outputs(_repo(root))} - set(report["missing"]))
    args = ["pull", "-r", report["remote"], *(complete if n_missing else [])]
    if _dvc(*args, cwd=root) != 0:
        raise RTDError(f"`dvc {' '.join(args)}` failed (its messages are above)")
    return 1 if n_missing else 0


def publish(url: str, name: str = "publish", root: str = ".") -> int:
    """Push every cached output and the run-cache to ``url`` (a remote named ``name`` in .dvc/config.local), then
    verify: clone the committed repository into a temporary folder and pull everything from ``url`` there."""
    if subprocess.run(["git", "status", "--porcelain", "--", "dvc.lock", "dvc.yaml", "params.yaml"], cwd=root,
                      capture_output=True, text=True).stdout.strip():
        raise RTDError("dvc.lock, dvc.yaml or params.yaml has uncommitted changes: commit them first, so that what "
                       "is published is what a clone of the commit asks for")
    for args in (["remote", "add", "--local", "--force", name, url], ["push", "-r", name, "--run-cache"]):
        if _dvc(*args, cwd=root) != 0:
            raise RTDError(f"`dvc {' '.join(args)}` failed (its messages are above)")
    with tempfile.TemporaryDirectory(prefix="rtd-publish-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(Path(root).resolve()), str(clone)], check=True)
        _dvc("remote", "add", "--local", "--force", "-d", name, url, cwd=str(clone))
        status = pull(name, str(clone))
        if status != 0:
            raise RTDError(f"published to {url}, but a fresh clone could not pull everything from it (status {status})")
    print(f"published to {url} and verified: a fresh clone pulled every output", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pull", help="check the remote, then pull what it holds")
    p.add_argument("-r", "--remote", default=None, help="remote name (default: the project's default remote)")
    q = sub.add_parser("publish", help="push to URL and verify it from a fresh clone")
    q.add_argument("url")
    q.add_argument("-r", "--name", default="publish", help="the name of the remote in .dvc/config.local")
    opts = parser.parse_args(argv)
    try:
        code = pull(opts.remote) if opts.command == "pull" else publish(opts.url, opts.name)
    except RTDError as exc:
        print(f"error [{opts.command}]: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
