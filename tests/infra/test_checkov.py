"""checkov on the synthesized templates: no failure that is not acknowledged with its reason.

checkov runs from its own venv (``.venv-checkov``, made by ``make deps``/``make test`` from
``tools/checkov/requirements.lock``): it pins ``cachetools<6``, the runtime needs 8. An
acknowledgement is ``Metadata.checkov.skip`` on the resource, written by
:func:`infra.nag.skip_checkov` beside the resource it excuses.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.infra.support import ROOT, Synthesized

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
#: A template with one finding nobody acknowledged: proves the scan reports what it should.
CANARY = {
    "Resources": {
        "PlainTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "canary"}},
    }
}
MIN_REASON_CHARS = 30


@pytest.fixture(scope="session")
def scan(synthesized: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over both stacks' templates and the canary (~10 s on 2 busy cores)."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: `make deps` creates it from tools/checkov/")
    folder = tmp_path_factory.mktemp("checkov")
    for template in synthesized.template_files:
        shutil.copy(template, folder / template.name)
    (folder / "canary.template.json").write_text(json.dumps(CANARY))
    files = [arg for path in sorted(folder.iterdir()) for arg in ("-f", str(path))]
    started = time.monotonic()
    # --skip-download: no Prisma Cloud API (no network here); guideline links are left out.
    run = subprocess.run(
        [str(CHECKOV), *files, "--framework", "cloudformation", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: dict[str, Any] = json.loads(run.stdout)
    report["seconds"] = time.monotonic() - started
    return report


def _results(report: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    yield from report["results"][kind]


def _is_canary(result: dict[str, Any]) -> bool:
    return Path(result["file_path"]).name == "canary.template.json"


def test_every_template_was_scanned(scan: dict[str, Any]) -> None:
    # GIVEN the checkov report WHEN summarised THEN it parsed every file and ran hundreds of checks
    summary = scan["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["checkov_version"] == "3.3.30"
    assert summary["resource_count"] > 300
    assert summary["passed"] > 500
    print(f"checkov: {summary} in {scan['seconds']:.1f} s")


def test_no_unacknowledged_failure(scan: dict[str, Any]) -> None:
    # GIVEN both stacks' templates WHEN checkov scans them THEN nothing fails unacknowledged
    failures = [
        f"{Path(r['file_path']).name}: {r['check_id']} {r['resource']} ({r['check_name']})"
        for r in _results(scan, "failed_checks")
        if not _is_canary(r)
    ]
    header = "unacknowledged checkov findings (fix them, or infra.nag.skip_checkov + reason):"
    assert failures == [], "\n".join([header, *failures])


def test_an_unacknowledged_finding_is_reported(scan: dict[str, Any]) -> None:
    # GIVEN a template with an unencrypted topic and no skip WHEN scanned THEN it fails
    canary = {r["check_id"] for r in _results(scan, "failed_checks") if _is_canary(r)}
    assert canary == {"CKV_AWS_26"}


def test_every_acknowledgement_has_a_reason(scan: dict[str, Any]) -> None:
    # GIVEN the skipped checks WHEN inspected THEN each carries a real reason
    skipped = list(_results(scan, "skipped_checks"))
    assert skipped
    for result in skipped:
        reason = result["check_result"].get("suppress_comment") or ""
        assert len(reason.strip()) >= MIN_REASON_CHARS, (result["check_id"], result["resource"])
