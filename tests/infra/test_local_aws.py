"""The local AWS server the storage and key-service tests use answers over HTTP on loopback."""

from __future__ import annotations

from urllib.parse import urlsplit


def test_local_aws_serves_s3_and_kms_on_loopback(aws):
    assert urlsplit(aws.endpoint_url).hostname == "127.0.0.1"
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="probe", CreateBucketConfiguration={"LocationConstraint": aws.region})
    s3.put_object(Bucket="probe", Key="a.txt", Body=b"hello")
    assert s3.get_object(Bucket="probe", Key="a.txt")["Body"].read() == b"hello"
    kms = aws.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]


def test_local_aws_is_reset_between_tests(aws):
    assert aws.client("s3").list_buckets()["Buckets"] == []
