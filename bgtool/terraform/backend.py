"""The Terraform state backend of an environment.

On the embedded AWS the S3 bucket and DynamoDB lock table are created on demand, so locking is as
real in tests as in production. On a real account they are infrastructure of their own and are
never created implicitly: a missing bucket is reported with the commands that create it.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from bgtool.aws.session import Aws
from bgtool.config.schema import Environment
from bgtool.errors import BgtoolError


def state_key(config: Environment, env: str, layer: str) -> str:
    return f"{config.state.key_prefix}/{env}/{layer}.tfstate"


def ensure_backend(config: Environment, aws: Aws) -> list[str]:
    """Make sure the backend exists; returns what was created."""
    if config.state.backend != "s3":
        return []
    if not config.embedded:
        return []
    created: list[str] = []
    try:
        if _ensure_bucket(config, aws):
            created.append(f"s3 bucket {config.state.bucket}")
        if _ensure_table(config, aws):
            created.append(f"dynamodb table {config.state.lock_table}")
    except (ClientError, BotoCoreError) as exc:
        raise BgtoolError(
            f"cannot prepare the state backend on {config.aws.endpoint}: {exc}",
            hint="Is the embedded AWS running? Start it with 'bgtool local up'.",
        ) from None
    return created


def _ensure_bucket(config: Environment, aws: Aws) -> bool:
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=config.state.bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, object] = {"Bucket": config.state.bucket}
    if config.aws.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": config.aws.region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:  # another bgtool process created it a moment ago
        if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    # State holds every resource's attributes: versioned (a bad write can be undone), encrypted, never public.
    s3.put_bucket_versioning(Bucket=config.state.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=config.state.bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=config.state.bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return True


def _ensure_table(config: Environment, aws: Aws) -> bool:
    ddb = aws.client("dynamodb")
    try:
        ddb.describe_table(TableName=config.state.lock_table)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    try:
        ddb.create_table(
            TableName=config.state.lock_table,
            AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:  # created concurrently by another bgtool process
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=config.state.lock_table)
    ddb.update_continuous_backups(TableName=config.state.lock_table,
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    return True
