"""Compliance: cdk-nag AwsSolutions with every finding acknowledged, cfn-lint with no errors."""

from __future__ import annotations

from cfnlint.api import lint_file

from tests.infra.support import Synthesized


def test_cdk_nag_has_no_unacknowledged_findings(synthesized: Synthesized) -> None:
    # GIVEN both stacks synthesized with AwsSolutionsChecks WHEN the report is read
    # THEN the plugin succeeded with no open violation
    plugins = {p["pluginName"]: p for p in synthesized.validation_report()["pluginReports"]}
    assert "AwsSolutions" in plugins
    # CDK's own "CloudFormation Validate" plugin reports here too: hold it to the same bar.
    for plugin in plugins.values():
        assert plugin["violations"] == [], plugin["pluginName"]
        assert plugin["conclusion"] == "success", plugin["pluginName"]


def test_every_acknowledgement_has_a_reason(synthesized: Synthesized) -> None:
    # GIVEN the suppressed findings WHEN inspected THEN each carries a real reason
    (nag,) = [
        p
        for p in synthesized.validation_report()["pluginReports"]
        if p["pluginName"] == "AwsSolutions"
    ]
    suppressed = nag["suppressedViolations"]
    assert suppressed
    for finding in suppressed:
        assert len(finding["reason"].strip()) >= 30, finding["ruleName"]


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    # GIVEN every synthesized template WHEN cfn-lint runs THEN no match is an error
    files = synthesized.template_files
    assert len(files) == 2
    errors = [
        f"{match.rule.id} {match.message} ({path.name}:{match.linenumber})"
        for path in files
        for match in lint_file(path, {"regions": ["ap-south-1"]})
        if match.rule.severity == "error"
    ]
    assert errors == []
