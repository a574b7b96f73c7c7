"""Publish the web chat page to a deployed stack: `python -m concierge_cli.web_publish --env ENV`
(`make deploy ENV=…` runs it after `sam deploy`).

It reads the stack's outputs (samconfig.toml names the stack), uploads the page's files in web/
to the stack's WebBucket with their content types, deletes what the page no longer has, writes
config.json for the page (the API's URL, the hosted UI and the app client), and invalidates the
WebDistribution so that browsers get the new page at once. Every object is sent with
`Cache-Control: no-cache`: the files have no hashed names, so a browser revalidates each (a 304
when nothing changed) rather than mixing an old script with a new page.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concierge_cli.local.web import CONFIG_NAME, CONTENT_TYPES, WEB_DIR, page_files
from concierge_cli.stacks import Stack, StackError, stack
from concierge_cli.support import UsageError

CACHE_CONTROL = "no-cache"


@dataclass(frozen=True)
class Published:
    bucket: str
    uploaded: list[str]
    removed: list[str]
    config: dict[str, str]
    invalidation: str


def page_config(outputs: Stack) -> dict[str, str]:
    """config.json of the page for a stack: its API, and the hosted UI it signs in with."""
    if "SignInUrl" not in outputs.outputs:
        raise StackError(
            f"stack {outputs.name} has no SignInUrl output: the web page signs in through the "
            "stack's Cognito hosted UI, which a stack with its own issuer (AuthIssuer) has not"
        )
    return {
        "api_url": outputs.output("ApiUrl"),
        "auth": "cognito",
        "cognito_domain": outputs.output("SignInUrl"),
        "client_id": outputs.output("UserPoolClientId"),
    }


def publish(root: Path, outputs: Stack, s3: Any, cloudfront: Any) -> Published:
    """web/ and its config.json into the stack's bucket, and the distribution invalidated."""
    bucket = outputs.output("WebBucketName")
    distribution = outputs.output("WebDistributionId")
    config = page_config(outputs)
    files = page_files(root / WEB_DIR)
    for file in files:
        s3.put_object(
            Bucket=bucket,
            Key=file.name,
            Body=file.read_bytes(),
            ContentType=CONTENT_TYPES[file.suffix],
            CacheControl=CACHE_CONTROL,
        )
    s3.put_object(
        Bucket=bucket,
        Key=CONFIG_NAME,
        Body=json.dumps(config, indent=2).encode(),
        ContentType=CONTENT_TYPES[".json"],
        CacheControl=CACHE_CONTROL,
    )
    kept = {file.name for file in files} | {CONFIG_NAME}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    stale = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    removed = [key for key in stale if key not in kept]
    for start in range(0, len(removed), 1000):
        batch = [{"Key": key} for key in removed[start : start + 1000]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    invalidation = cloudfront.create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={
            "Paths": {"Quantity": 1, "Items": ["/*"]},
            "CallerReference": f"concierge-web-{time.time_ns()}",
        },
    )["Invalidation"]["Id"]
    return Published(
        bucket=bucket,
        uploaded=[file.name for file in files] + [CONFIG_NAME],
        removed=removed,
        config=config,
        invalidation=str(invalidation),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m concierge_cli.web_publish",
        description="Upload web/ and its config.json to a stack's web bucket and invalidate its "
        "distribution (make deploy ENV=… runs it).",
    )
    parser.add_argument("--env", required=True, help="dev, staging or prod (samconfig.toml)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    from concierge import wiring

    try:
        outputs = stack(args.root, args.env)
        done = publish(
            args.root,
            outputs,
            wiring.aws_client("s3", region=outputs.region),
            wiring.aws_client("cloudfront", region=outputs.region),
        )
    except UsageError as error:
        print(f"web_publish: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        print(f"web_publish: {error}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:
        print(f"web_publish: the page could not be published: {error}", file=sys.stderr)
        return 1
    print(
        f"web page: {len(done.uploaded)} files to s3://{done.bucket}"
        + (f", {len(done.removed)} old ones removed" if done.removed else "")
        + f"; invalidation {done.invalidation}; {outputs.outputs.get('WebUrl', '')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
