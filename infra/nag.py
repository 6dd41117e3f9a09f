"""Compliance acknowledgements, cdk-nag's and checkov's: each names its rule and its reason."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_logs as logs
from constructs import IConstruct

#: The AWS-managed policies CDK attaches to Lambda roles (logs; ENIs for VPC functions).
LAMBDA_BASIC_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
)
LAMBDA_VPC_POLICY = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
)


def acknowledge(scope: IConstruct, rule: str, reason: str, *, finding: str | None = None) -> None:
    """Acknowledge one AwsSolutions rule for ``scope`` and everything below it.

    Parameters
    ----------
    scope
        The construct the acknowledgement applies to (and its children).
    rule
        Rule id without prefix, e.g. ``"IAM5"``.
    reason
        Why the finding is accepted; shown in the validation report.
    finding
        Optional finding id (e.g. a policy ARN for IAM4) to acknowledge only that finding.
    """
    rule_id = f"AwsSolutions::AwsSolutions-{rule}"
    if finding is not None:
        rule_id = f"{rule_id}[{finding}]"
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


#: Why functions that aws-cdk-lib owns (custom resource providers) keep their shape.
CDK_PROVIDER_FUNCTION = {
    "CKV_AWS_115": "Deploy-time only: CloudFormation invokes it a few times per deployment, so "
    "it can neither exhaust the account's concurrency nor the database.",
    "CKV_AWS_116": "CloudFormation invokes it and waits for its answer: a failure fails (and "
    "rolls back) the deployment, which is where it is seen; a DLQ would hold nothing useful.",
    "CKV_AWS_117": "It calls AWS APIs only (EC2, Lambda) and reaches nothing inside the VPC; "
    "its code and placement belong to aws-cdk-lib.",
    "CKV_AWS_173": "Its environment is aws-cdk-lib's (function names, no secret), encrypted at "
    "rest by Lambda's service key.",
}


def skip_checkov(scope: IConstruct, check: str, reason: str) -> None:
    """Acknowledge one checkov check on the CloudFormation resource of ``scope``.

    The acknowledgement travels with the resource as ``Metadata.checkov.skip``, which checkov
    reads from the synthesized template and reports as a skipped check with this reason
    (``tests/infra/test_checkov.py``).

    Parameters
    ----------
    scope
        A CloudFormation resource, or an L2 construct whose default child is one.
    check
        Check id, e.g. ``"CKV_AWS_158"``.
    reason
        Why the finding is accepted.

    Raises
    ------
    TypeError
        When ``scope`` has no CloudFormation resource to carry the metadata.
    """
    resource = scope if isinstance(scope, cdk.CfnResource) else scope.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    current = resource.get_metadata("checkov") or {}
    skips = [s for s in current.get("skip", []) if s["id"] != check]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check, "comment": reason}]})


def logical_ref(stack: cdk.Stack, token: str) -> str:
    """How cdk-nag spells a reference to a resource inside a finding id.

    Parameters
    ----------
    stack
        The stack holding the resource.
    token
        A ``Ref`` or ``Fn::GetAtt`` token (``api.api_id``, ``fn.function_arn``…).

    Returns
    -------
    str
        ``<LogicalId>`` for a ``Ref``, ``<LogicalId.Attr>`` for a ``GetAtt``.
    """
    resolved = stack.resolve(token)
    if "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    logical_id, attribute = resolved["Fn::GetAtt"]
    return f"<{logical_id}.{attribute}>"


@jsii.implements(cdk.IAspect)
class LogGroupsWithServiceKeys:
    """Acknowledge checkov's customer-key rule (CKV_AWS_158) on every log group of a stack.

    One decision for all log groups, present and future, so it is an aspect rather than a line
    beside each of them.
    """

    REASON = (
        "CloudWatch Logs encrypts every log group at rest with its service key. No log here "
        "carries credentials or tokens (functions log ids, statuses and timings, never event "
        "bodies; access and flow logs carry addresses and routes) and reading them is "
        "IAM-controlled, so a customer key would add key policies and cost, not protection."
    )

    def visit(self, node: IConstruct) -> None:
        """Annotate ``node`` when it is a log group."""
        if isinstance(node, logs.CfnLogGroup):
            skip_checkov(node, "CKV_AWS_158", self.REASON)
