"""Raw Kinesis requests over HTTP, signed with botocore's own SigV4 signer:
bodies the SDKs would never send (unknown members, hand-made CBOR), so the
server's own parsing is what is tested."""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from kinesis_helpers import REGION

JSON_1_1 = "application/x-amz-json-1.1"
CBOR_1_1 = "application/x-amz-cbor-1.1"


def call(endpoint: str, action: str, body: bytes, content_type: str = JSON_1_1) -> tuple[int, bytes]:
    """POSTs `body` as `Kinesis_20131202.<action>`; returns (status, body)."""
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={"Content-Type": content_type, "X-Amz-Target": f"Kinesis_20131202.{action}"},
    )
    # The offline test environment's keys; the server accepts any unless configured.
    SigV4Auth(Credentials("AKIDRIFFLETEST", "riffle-test-secret"), "kinesis", REGION).add_auth(request)
    prepared = urllib.request.Request(endpoint + "/", data=body, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def call_json(endpoint: str, action: str, body: dict) -> tuple[int, dict]:
    """A JSON 1.1 request; returns (status, parsed body or {})."""
    status, raw = call(endpoint, action, json.dumps(body).encode())
    return status, (json.loads(raw) if raw else {})


def cbor(value) -> bytes:
    """CBOR (RFC 8949) of str, bool, non-negative int, list and dict values:
    enough for a request body, with definite lengths."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for extra, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
            if n < 1 << (8 * struct.calcsize(fmt)):
                return bytes([major << 5 | extra]) + struct.pack(fmt, n)
        raise ValueError(n)

    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return head(0, value)
    if isinstance(value, str):
        data = value.encode()
        return head(3, len(data)) + data
    if isinstance(value, list):
        return head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        return head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(type(value))
