"""A runtime written against the Runtime API by hand (no client library),
to check what Riffle serves at its edges: the headers of /next, and the
answers to a wrong request id, an unknown path and an oversized response.
It answers each event with what it saw."""

import json
import os
import urllib.error
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def call(method, path, body=None):
    request = urllib.request.Request(API + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


while True:
    status, headers, event = call("GET", "/invocation/next")
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    seen = {"next_status": status, "headers": headers, "event": json.loads(event)}
    code, _, body = call("POST", "/invocation/not-" + request_id + "/response", b"{}")
    seen["wrong_id"] = [code, json.loads(body)]
    code, _, body = call("GET", "/invocation/nowhere")
    seen["unknown_path"] = code
    if seen["event"].get("oversize"):
        code, _, body = call(
            "POST", "/invocation/" + request_id + "/response", b"x" * (6 * 1024 * 1024 + 1)
        )
        print("oversize answered", code, body.decode(), flush=True)
        continue
    print("answering", request_id, flush=True)
    code, _, body = call("POST", "/invocation/" + request_id + "/response", json.dumps(seen).encode())
    assert code == 202 and json.loads(body) == {"status": "OK"}, (code, body)
