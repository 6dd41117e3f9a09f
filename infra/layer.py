"""Build the Lambda dependency layer without Docker.

``python -m infra.layer`` installs the runtime dependencies of ``pyproject.toml`` (pinned and
hash-checked through ``requirements.lock``/``uv.lock``) as manylinux wheels for the Lambda target
of :mod:`infra.target` into ``build/layer/python``. It needs PyPI the first time; afterwards it is
a no-op until the lock, ``pyproject.toml`` or the target changes, so synthesis stays offline.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra import target

ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = ROOT / "build" / "layer"
STAMP_NAME = ".stamp"
_INPUTS = ("pyproject.toml", "requirements.lock", "uv.lock")


def _uv() -> str:
    # The Makefile installs uv into the virtualenv; a developer may have it on PATH instead.
    beside_python = Path(sys.executable).with_name("uv")
    uv = str(beside_python) if beside_python.exists() else shutil.which("uv")
    if uv is None:
        raise RuntimeError("uv is required to export the runtime requirements from uv.lock")
    return uv


def runtime_requirements(root: Path = ROOT) -> str:
    """The pinned, hashed runtime requirements (no dev extra, not the project itself).

    Parameters
    ----------
    root
        Repository root holding ``pyproject.toml`` and ``uv.lock``.

    Returns
    -------
    str
        A requirements file body with ``--hash`` lines.
    """
    # Extras are opt-in for uv export, so leaving out --extra/--all-extras drops the dev extra.
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            _uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            "--format",
            "requirements-txt",
        ],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def fingerprint(root: Path = ROOT) -> str:
    """A hash of everything the layer's content depends on.

    Parameters
    ----------
    root
        Repository root.

    Returns
    -------
    str
        Hex SHA-256 of the lock files, ``pyproject.toml`` and the Lambda target.
    """
    digest = hashlib.sha256()
    for name in _INPUTS:
        path = root / name
        if path.exists():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    digest.update(
        f"{target.PYTHON_VERSION}|{target.CPYTHON_ABI}|{target.MANYLINUX_PLATFORMS}".encode()
    )
    return digest.hexdigest()


def is_fresh(layer_dir: Path = LAYER_DIR, root: Path = ROOT) -> bool:
    """Whether the built layer matches the current inputs.

    Parameters
    ----------
    layer_dir
        The layer folder (``python/`` inside it).
    root
        Repository root.

    Returns
    -------
    bool
        True when the stamp written by the last build equals :func:`fingerprint`.
    """
    stamp = layer_dir / STAMP_NAME
    return stamp.exists() and stamp.read_text().strip() == fingerprint(root)


def _pip_install(requirements: Path, dest: Path) -> None:
    platforms = [arg for tag in target.MANYLINUX_PLATFORMS for arg in ("--platform", tag)]
    subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # The wheels are for another interpreter: never byte-compile them with this one.
            "--no-compile",
            # uv already resolved the full closure; --no-deps keeps pip from re-resolving.
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            target.PYTHON_VERSION,
            "--abi",
            target.CPYTHON_ABI,
            "--abi",
            "abi3",
            "--abi",
            "none",
            *platforms,
            "--target",
            str(dest / "python"),
            "-r",
            str(requirements),
        ],
        check=True,
    )


def _prune(site: Path) -> None:
    # Console scripts point at this machine's interpreter and caches are useless read-only.
    shutil.rmtree(site / "bin", ignore_errors=True)
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def build_layer(*, force: bool = False, layer_dir: Path = LAYER_DIR, root: Path = ROOT) -> Path:
    """Build the dependency layer unless the existing one is current.

    Parameters
    ----------
    force
        Rebuild even when the stamp matches.
    layer_dir
        Output folder; the packages go to ``layer_dir / "python"`` (the Lambda layer layout).
    root
        Repository root.

    Returns
    -------
    Path
        ``layer_dir``.
    """
    if not force and is_fresh(layer_dir, root):
        return layer_dir
    layer_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the final folder and swap, so an interrupted build never looks fresh.
    with tempfile.TemporaryDirectory(dir=layer_dir.parent, prefix=".layer-") as tmp:
        staging = Path(tmp)
        requirements = staging / "requirements.txt"
        requirements.write_text(runtime_requirements(root))
        out = staging / "out"
        _pip_install(requirements, out)
        _prune(out / "python")
        (out / STAMP_NAME).write_text(fingerprint(root) + "\n")
        if layer_dir.exists():
            shutil.rmtree(layer_dir)
        out.rename(layer_dir)
    return layer_dir


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``python -m infra.layer [--force]``.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Process exit code.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    fresh = not args.force and is_fresh()
    path = build_layer(force=args.force)
    print(f"layer {'up to date' if fresh else 'built'}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
