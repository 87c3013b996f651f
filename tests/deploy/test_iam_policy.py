"""deploy/iam-policy.json: exactly what the operator and its workers call on AWS, on our resources only."""

from __future__ import annotations

import ast
import json
import re

import pytest

from tests.deploy.conftest import ROOT

POLICY = ROOT / "deploy" / "iam-policy.json"
STORAGE = ROOT / "operator" / "videojob" / "storage"


@pytest.fixture(scope="module")
def statements() -> dict[str, dict]:
    policy = json.loads(POLICY.read_text())
    assert policy["Version"] == "2012-10-17"
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert len(by_sid) == len(policy["Statement"]), "Sids are unique"
    return by_sid


def actions(statement) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


def resources(statement) -> list[str]:
    r = statement["Resource"]
    return [r] if isinstance(r, str) else r


def test_only_allow_statements_without_wildcard_actions_or_resources(statements):
    for sid, s in statements.items():
        assert s["Effect"] == "Allow", sid
        for action in actions(s):
            assert "*" not in action, (sid, action)
        if sid == "NarrationSpeech":
            continue  # Polly's SynthesizeSpeech has no resource type: IAM takes only "*" (see below)
        for resource in resources(s):
            assert resource != "*" and not resource.endswith(":*"), (sid, resource)


def test_polly_may_only_synthesize_speech_in_the_configured_region(statements):
    """Narration with `engine: polly`: SynthesizeSpeech alone (no lexicon or task management);
    Polly defines no resource for it, so the statement is narrowed by region instead."""
    s = statements["NarrationSpeech"]
    assert actions(s) == {"polly:SynthesizeSpeech"} and resources(s) == ["*"]
    assert s["Condition"] == {"StringEquals": {"aws:RequestedRegion": "REGION"}}
    engine = (ROOT / "operator" / "videojob" / "pipeline" / "narration" / "polly_engine.py").read_text()
    calls = {node.func.attr for node in ast.walk(ast.parse(engine)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Attribute)
             and node.func.value.attr == "client"}
    assert calls == {"synthesize_speech"}


def test_objects_are_writable_only_under_the_designs_key_prefixes(statements):
    assert resources(statements["VideoObjects"]) == ["arn:aws:s3:::VIDEO_BUCKET/videos/*"]
    assert resources(statements["CodeObjects"]) == ["arn:aws:s3:::CODE_BUCKET/code/*"]
    assert {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"} <= actions(statements["VideoObjects"])
    # Object Lock on code (spec.storage.codeObjectLock) sets retention at PutObject time.
    assert "s3:PutObjectRetention" in actions(statements["CodeObjects"])
    assert "s3:PutObjectRetention" not in actions(statements["VideoObjects"])
    for sid, s in statements.items():
        assert not actions(s) & {"s3:DeleteObject", "s3:DeleteBucket", "s3:CreateBucket", "s3:PutBucketPolicy",
                                 "s3:BypassGovernanceRetention"}, sid


def test_bucket_level_reads_are_on_the_two_buckets(statements):
    s = statements["BucketChecks"]
    assert actions(s) == {"s3:ListBucket", "s3:GetBucketObjectLockConfiguration"}
    assert sorted(resources(s)) == ["arn:aws:s3:::CODE_BUCKET", "arn:aws:s3:::VIDEO_BUCKET"]


def test_dynamodb_rights_cover_the_table_and_its_project_index_only(statements):
    table = statements["VersionTable"]
    assert actions(table) == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:DescribeTable"}
    assert resources(table) == ["arn:aws:dynamodb:REGION:ACCOUNT_ID:table/TABLE"]
    index = statements["VersionTableProjectIndex"]
    assert actions(index) == {"dynamodb:Query"}
    assert resources(index) == ["arn:aws:dynamodb:REGION:ACCOUNT_ID:table/TABLE/index/project-index"]
    for s in statements.values():
        assert not actions(s) & {"dynamodb:DeleteItem", "dynamodb:DeleteTable", "dynamodb:CreateTable", "dynamodb:Scan"}


def test_kms_is_one_key_used_through_s3_only(statements):
    kms = statements["KmsOnlyWhenAwsKmsKeyIdIsSet"]
    assert actions(kms) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert resources(kms) == ["arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "s3.REGION.amazonaws.com"}}


def test_policy_covers_every_aws_call_the_runtime_code_makes(statements):
    """Each boto3 client call in storage/ (except the dev-only `videojob aws init` creators) maps to an
    allowed action; a new call without a policy line fails here."""
    granted = set().union(*(actions(s) for s in statements.values()))
    needs = {
        "upload_file": {"s3:PutObject", "s3:AbortMultipartUpload"},
        "put_object": {"s3:PutObject"},
        "get_object": {"s3:GetObject"},
        "get_paginator": {"s3:ListBucket", "dynamodb:Query"},  # list_objects_v2, query
        "head_bucket": {"s3:ListBucket"},
        "head_object": {"s3:GetObject"},
        "get_object_lock_configuration": {"s3:GetBucketObjectLockConfiguration"},
        "get_item": {"dynamodb:GetItem"},
        "put_item": {"dynamodb:PutItem"},
        "query": {"dynamodb:Query"},
        "describe_table": {"dynamodb:DescribeTable"},
    }
    dev_only = {"create_bucket", "create_table", "put_object_lock_configuration", "get_waiter"}
    calls = set()
    for path in STORAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "client"):
                calls.add(node.func.attr)
    assert calls, "storage/ makes AWS calls through self.client"
    unknown = calls - set(needs) - dev_only - {"exceptions", "meta"}
    assert not unknown, f"add these calls to deploy/iam-policy.json and this test: {sorted(unknown)}"
    for call in calls - dev_only:
        if call in needs:
            assert needs[call] <= granted, call


def test_placeholders_are_the_documented_ones():
    text = POLICY.read_text()
    assert set(re.findall(r"\b[A-Z][A-Z_]{2,}\b", text)) == {
        "VIDEO_BUCKET", "CODE_BUCKET", "REGION", "ACCOUNT_ID", "TABLE", "KMS_KEY_ID"}
    docs = (ROOT / "docs" / "deployment.md").read_text()
    for name in ("VIDEO_BUCKET", "CODE_BUCKET", "REGION", "ACCOUNT_ID", "TABLE", "KMS_KEY_ID"):
        assert name in docs, name
