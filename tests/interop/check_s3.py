"""The object-storage tests' view of an S3-compatible server (tests/it/object_store.rs).

  check_s3.py serve                           an S3 server (moto) on 127.0.0.1, until stdin closes;
                                              prints the port it listens on
  check_s3.py mkbucket BUCKET                 creates a bucket
  check_s3.py keys BUCKET PREFIX              JSON: every object below PREFIX with its size
  check_s3.py uploads BUCKET                  JSON: the keys of the multipart uploads in progress
  check_s3.py download BUCKET PREFIX DEST     copies every object below PREFIX into folder DEST
  check_s3.py compare BUCKET PREFIX LOCAL T…  JSON: tables T read from s3://BUCKET/PREFIX with
                                              pyarrow's S3FileSystem and with polars, each
                                              compared with the same table read from LOCAL

The endpoint and credentials come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_REGION, as the exporter reads them.
"""

import json
import os
import sys


def endpoint():
    return os.environ["AWS_ENDPOINT_URL"]


def client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint(),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region_name=os.environ["AWS_REGION"],
    )


def serve():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    sys.stdin.read()  # until the test closes stdin or kills the process
    server.stop()


def keys(bucket, prefix):
    out = {}
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
    return out


def uploads(bucket):
    return [u["Key"] for u in client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def download(bucket, prefix, dest):
    s3 = client()
    for key in keys(bucket, prefix):
        target = os.path.join(dest, os.path.relpath(key, prefix))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        s3.download_file(bucket, key, target)
    return "ok"


def compare(bucket, prefix, local, tables):
    import polars as pl
    import pyarrow.dataset as ds
    import pyarrow.fs as fs

    s3 = fs.S3FileSystem(
        access_key=os.environ["AWS_ACCESS_KEY_ID"],
        secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=endpoint(),
        region=os.environ["AWS_REGION"],
    )
    options = {
        "aws_endpoint_url": endpoint(),
        "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "aws_region": os.environ["AWS_REGION"],
        "aws_allow_http": "true",
    }
    out = {}
    for table in tables:
        remote = ds.dataset(f"{bucket}/{prefix}/{table}", filesystem=s3, format="parquet", partitioning="hive").to_table()
        here = ds.dataset(f"{local}/{table}", format="parquet", partitioning="hive").to_table()
        # Two runs join their rows with inventory snapshots taken at two instants.
        keep = [c for c in here.column_names if c != "snapshot_ts"]
        remote_pl = pl.scan_parquet(
            f"s3://{bucket}/{prefix}/{table}/**/*.parquet", hive_partitioning=True, storage_options=options
        ).collect()
        here_pl = pl.scan_parquet(f"{local}/{table}/**/*.parquet", hive_partitioning=True).collect()
        out[table] = {
            "rows": here.num_rows,
            "pyarrow_rows": remote.num_rows,
            "pyarrow_equal": remote.select(keep).equals(here.select(keep)),
            "polars_rows": remote_pl.height,
            "polars_equal": remote_pl.select(keep).equals(here_pl.select(keep)),
        }
    return out


def main(args):
    command = args[0]
    if command == "serve":
        serve()
        return
    if command == "mkbucket":
        client().create_bucket(Bucket=args[1])
        result = "ok"
    elif command == "keys":
        result = keys(args[1], args[2])
    elif command == "uploads":
        result = uploads(args[1])
    elif command == "download":
        result = download(args[1], args[2], args[3])
    elif command == "compare":
        result = compare(args[1], args[2], args[3], args[4:])
    else:
        raise SystemExit(f"unknown command {command}")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
