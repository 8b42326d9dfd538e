"""`bgtool local save` / `local restore`: moto's backends survive a pickle, and a bad archive changes nothing.

The round trip runs moto in-process (its own backends, no server): what is checked is that every
service's data comes back usable, including the parts that do not pickle by themselves (locks,
keys). The archive checks need no AWS at all: each refusal happens before anything is started.
"""

from __future__ import annotations

import io
import json
import tarfile
from importlib.metadata import version
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import BackendDict

from bgtool.config.project import state_dir
from bgtool.embedded import mototap, server, snapshot
from bgtool.errors import BgtoolError


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_every_service_comes_back_usable_after_a_reset(aws_env: None, tmp_path: Path) -> None:
    with mock_aws():
        s3, sqs, ddb = boto3.client("s3"), boto3.client("sqs"), boto3.client("dynamodb")
        ec2, elb = boto3.client("ec2"), boto3.client("elbv2")
        s3.create_bucket(Bucket="state-bucket")
        s3.put_object(Bucket="state-bucket", Key="local/base.tfstate", Body=b'{"serial": 7}')
        queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]  # holds locks
        sqs.send_message(QueueUrl=queue, MessageBody="job-1")
        ddb.create_table(TableName="locks", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST")
        ddb.put_item(TableName="locks", Item={"id": {"S": "local"}})
        key = ec2.create_key_pair(KeyName="ops")["KeyFingerprint"]  # holds an RSA key object
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        group = elb.create_target_group(Name="blue", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
        saved = tmp_path / "backends.pickle"
        mototap.dump_backends(saved)

        BackendDict.reset()
        assert s3.list_buckets()["Buckets"] == []  # the reset really emptied moto
        loaded = mototap.load_backends(saved)

        assert {"moto.s3.models:s3_backends", "moto.sqs.models:sqs_backends"} <= set(loaded)
        assert s3.get_object(Bucket="state-bucket", Key="local/base.tfstate")["Body"].read() == b'{"serial": 7}'
        assert sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"] == "job-1"
        assert ddb.get_item(TableName="locks", Key={"id": {"S": "local"}})["Item"]["id"]["S"] == "local"
        assert ec2.describe_key_pairs(KeyNames=["ops"])["KeyPairs"][0]["KeyFingerprint"] == key
        (blue,) = elb.describe_target_groups(Names=["blue"])["TargetGroups"]
        assert blue["TargetGroupArn"] == group["TargetGroupArn"]
        sqs.send_message(QueueUrl=queue, MessageBody="job-2")  # the restored queue's new lock works
        elb.create_target_group(Name="green", Protocol="HTTP", Port=80, VpcId=vpc)  # and the restored VPC
        assert len(elb.describe_target_groups()["TargetGroups"]) == 2


def _archive(path: Path, meta: dict[str, object], members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {snapshot.META: json.dumps(meta).encode(), **members}.items():
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, io.BytesIO(data))
    return path


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (state_dir(root) / "history").mkdir(parents=True)
    (state_dir(root) / "history" / "local.json").write_text("kept")
    return root


GOOD = {"format": snapshot.FORMAT, "moto": version("moto")}


@pytest.mark.parametrize(("meta", "members", "says"), [
    ({**GOOD, "moto": "0.0.1"}, {snapshot.BACKENDS: b""}, "saved by moto 0.0.1"),
    ({**GOOD, "format": 99}, {snapshot.BACKENDS: b""}, "format 99"),
    (GOOD, {snapshot.BACKENDS: b"", "files/../outside": b"x"}, "which a restore never writes"),
    (GOOD, {snapshot.BACKENDS: b"", "files/dataplane/state.json": b"{}"}, "which a restore never writes"),
    (GOOD, {"files/history/local.json": b"x"}, "holds no backends.pickle"),
])
def test_a_bad_archive_is_refused_and_changes_nothing(
    tmp_path: Path, meta: dict[str, object], members: dict[str, bytes], says: str,
) -> None:
    root = _project(tmp_path)
    archive = _archive(tmp_path / "saved.tar.gz", meta, members)
    with pytest.raises(BgtoolError, match=says):
        snapshot.restore(root, archive, 1)
    assert (state_dir(root) / "history" / "local.json").read_text() == "kept"
    assert not (tmp_path / "outside").exists()
    assert server.status(root) is None


def test_a_file_that_is_no_archive_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    with pytest.raises(BgtoolError, match=r"notes.txt is not an archive 'bgtool local save' wrote"):
        snapshot.restore(_project(tmp_path), bogus, 1)


def test_nothing_running_means_nothing_to_save(tmp_path: Path) -> None:
    with pytest.raises(BgtoolError, match="not running: there is nothing to save"):
        snapshot.save(_project(tmp_path), tmp_path / "saved.tar.gz")
    assert not (tmp_path / "saved.tar.gz").exists()
