"""The dependency layer: built for the runtime's ABI and architecture, cached by a stamp."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from infra import layer, target

EXTENSION = re.compile(r"\.(?P<tag>cpython-\d+[^.]*|abi3)\.so$")


@pytest.fixture(scope="module")
def built_layer() -> Path:
    # Cached: a no-op unless the lock files changed (the first build needs PyPI).
    return layer.build_layer() / "python"


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not ELF"
    assert header[4] == 2, f"{path} is not 64-bit"
    endian = "<" if header[5] == 1 else ">"
    machine: int = struct.unpack(f"{endian}H", header[18:20])[0]
    return machine


def test_every_shared_object_targets_the_runtime(built_layer: Path) -> None:
    # GIVEN the built layer WHEN every shared object is inspected
    # THEN it is an ELF for the chosen architecture and extensions carry the runtime's ABI tag
    objects = [
        p for p in built_layer.rglob("*") if p.is_file() and re.search(r"\.so(\.|$)", p.name)
    ]
    assert objects, "the layer holds no compiled code: nothing was checked"
    expected_tag = f"cpython-{target.CPYTHON_ABI.removeprefix('cp')}-{target.LINUX_ARCH}-linux-gnu"
    for path in objects:
        assert _elf_machine(path) == target.ELF_MACHINE, path
        if path.name.endswith(".so") and not path.parent.name.endswith(".libs"):
            match = EXTENSION.search(path.name)
            assert match is not None, f"untagged extension {path}"
            assert match["tag"] in {expected_tag, "abi3"}, path


def test_compiled_dependencies_are_present(built_layer: Path) -> None:
    # GIVEN the runtime dependencies WHEN the layer is built THEN the compiled ones are there
    names = {p.name.split(".")[0] for p in built_layer.rglob("*.so")}
    assert {"_pydantic_core", "_psycopg", "hiredis", "_rust", "_wrappers"} <= names


def test_layer_has_no_dev_dependencies(built_layer: Path) -> None:
    # GIVEN the dev extra (CDK, pytest) WHEN the layer is built THEN none of it ships
    for name in ("aws_cdk", "pytest", "cfnlint", "moto", "boto3_stubs"):
        assert not (built_layer / name).exists(), name


def test_stamp_tracks_the_lock(tmp_path: Path) -> None:
    # GIVEN a stamp for the current lock WHEN the lock changes THEN the layer is stale
    for name in ("pyproject.toml", "requirements.lock"):
        (tmp_path / name).write_text("a==1\n")
    out = tmp_path / "layer"
    out.mkdir()
    (out / layer.STAMP_NAME).write_text(layer.fingerprint(tmp_path))
    assert layer.is_fresh(out, tmp_path)
    (tmp_path / "requirements.lock").write_text("a==2\n")
    assert not layer.is_fresh(out, tmp_path)
