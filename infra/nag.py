"""cdk-nag acknowledgements: every one names the rule and carries its reason in code."""

from __future__ import annotations

import aws_cdk as cdk
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
