"""What every baseline handler shares: clients built once at import, like the Rust mains."""
import os

import boto3
from botocore.config import Config

CONFIG = Config(connect_timeout=3, read_timeout=4, retries={"mode": "standard", "max_attempts": 3})


def client(service: str):
    return boto3.client(service, config=CONFIG)


TABLE = os.environ.get("TABLE_NAME", "")
