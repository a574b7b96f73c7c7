"""Publishing the web page to a stack (moto's S3 and CloudFront): web/ and config.json land in
the stack's bucket with their content types, what the page no longer has is removed, and the
distribution is invalidated; a stack without the hosted UI is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from concierge_cli.local.web import page_files
from concierge_cli.stacks import Stack, StackError
from concierge_cli.web_publish import publish

REGION = "eu-west-1"
BUCKET = "concierge-dev-webbucket"


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    """An S3 client with the web bucket, a CloudFront client and a distribution's id."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        cloudfront = boto3.client("cloudfront", region_name=REGION)
        origin = {"Id": "web-bucket", "DomainName": f"{BUCKET}.s3.{REGION}.amazonaws.com"}
        distribution = cloudfront.create_distribution(
            DistributionConfig={
                "CallerReference": "test",
                "Comment": "web page",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [{**origin, "S3OriginConfig": {"OriginAccessIdentity": ""}}],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "web-bucket",
                    "ViewerProtocolPolicy": "redirect-to-https",
                },
            }
        )["Distribution"]["Id"]
        yield s3, cloudfront, distribution


def outputs(distribution: str, **more: str) -> Stack:
    values = {
        "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/",
        "WebBucketName": BUCKET,
        "WebDistributionId": distribution,
        "WebUrl": "https://d111111abcdef8.cloudfront.net/",
        "SignInUrl": "https://concierge-dev-1a2b3c4d.auth.eu-west-1.amazoncognito.com",
        "UserPoolClientId": "4example0client0id",
        **more,
    }
    return Stack("concierge-dev", REGION, values)


def test_the_page_and_its_config_are_uploaded_and_the_distribution_invalidated(
    aws: tuple[Any, Any, str], repo_root: Path
) -> None:
    # Given a stack's bucket holding a file of an older page
    s3, cloudfront, distribution = aws
    s3.put_object(Bucket=BUCKET, Key="old-app.js", Body=b"old")

    # When the page is published
    done = publish(repo_root, outputs(distribution), s3, cloudfront)

    # Then every file of web/ is there with its content type, revalidated by browsers
    names = [file.name for file in page_files(repo_root / "web")]
    assert {"index.html", "app.js", "style.css", "callback.html"} <= set(names)
    for name in names:
        head = s3.head_object(Bucket=BUCKET, Key=name)
        assert head["CacheControl"] == "no-cache"
        expected = (repo_root / "web" / name).read_bytes()
        assert s3.get_object(Bucket=BUCKET, Key=name)["Body"].read() == expected
    assert s3.head_object(Bucket=BUCKET, Key="app.js")["ContentType"].startswith("text/javascript")
    assert s3.head_object(Bucket=BUCKET, Key="index.html")["ContentType"].startswith("text/html")
    # And config.json names the API, the hosted UI and the app client
    config = json.loads(s3.get_object(Bucket=BUCKET, Key="config.json")["Body"].read())
    assert config == {
        "api_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/",
        "auth": "cognito",
        "cognito_domain": "https://concierge-dev-1a2b3c4d.auth.eu-west-1.amazoncognito.com",
        "client_id": "4example0client0id",
    }
    # And the old page's file is gone, the distribution invalidated
    assert done.removed == ["old-app.js"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {*names, "config.json"}
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)
    assert [i["Id"] for i in invalidations["InvalidationList"]["Items"]] == [done.invalidation]


def test_a_stack_without_the_hosted_ui_is_refused_before_anything_is_uploaded(
    aws: tuple[Any, Any, str], repo_root: Path
) -> None:
    # Given a stack signing in with an issuer of its own (no SignInUrl output)
    s3, cloudfront, distribution = aws
    stack = outputs(distribution)
    stack.outputs.pop("SignInUrl")

    # When the page is published
    # Then it is refused, saying why, and the bucket stays empty
    with pytest.raises(StackError, match="hosted UI"):
        publish(repo_root, stack, s3, cloudfront)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)
