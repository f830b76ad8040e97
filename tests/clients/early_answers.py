"""Sends bodies that are answered before they are read, with Python clients that write the whole
body before reading the answer (urllib.request, requests), and prints one JSON line per request:
{"client", "case", "status", "code"} when the answer was read, or {"client", "case", "error"} when
the connection broke instead. tests/api/early_answers.rs runs it and checks the lines.

Environment: HUME_ACTION_URL (the server), HUME_ACTION_TOKEN (its bearer token),
UPLOAD_BYTES (the size of the upload to send, over the server's upload cap).
"""
import json
import os
import sys
import urllib.error
import urllib.request

import requests

BASE = os.environ["HUME_ACTION_URL"]
TOKEN = os.environ["HUME_ACTION_TOKEN"]
UPLOAD = b"a" * int(os.environ["UPLOAD_BYTES"])
BIG_JSON = json.dumps({"text": ["z" * (5 * 1024 * 1024)]}).encode()
BOUNDARY = "early-answers-boundary"
MULTIPART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="json"\r\n\r\n{{}}\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
).encode() + UPLOAD + f"\r\n--{BOUNDARY}--\r\n".encode()

# (case, body, content type, send the token)
CASES = [
    ("json_5mb", BIG_JSON, "application/json", True),
    ("upload_over_cap", MULTIPART, f"multipart/form-data; boundary={BOUNDARY}", True),
    ("upload_without_token", MULTIPART, f"multipart/form-data; boundary={BOUNDARY}", False),
]


def report(client, case, status=None, body=None, error=None):
    line = {"client": client, "case": case}
    if error is None:
        line.update(status=status, code=json.loads(body)["error"]["code"])
    else:
        line.update(error=f"{type(error).__name__}: {error}")
    print(json.dumps(line), flush=True)


def headers(content_type, with_token):
    h = {"Content-Type": content_type}
    if with_token:
        h["Authorization"] = f"Bearer {TOKEN}"
    return h


def with_urllib(case, body, content_type, with_token):
    request = urllib.request.Request(
        f"{BASE}/v0/batch/jobs", data=body, method="POST", headers=headers(content_type, with_token)
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            report("urllib", case, response.status, response.read())
    except urllib.error.HTTPError as e:
        report("urllib", case, e.code, e.read())
    except Exception as e:  # noqa: BLE001 - a broken connection is what is being checked
        report("urllib", case, error=e)


def with_requests(case, body, content_type, with_token):
    try:
        response = requests.post(
            f"{BASE}/v0/batch/jobs", data=body, headers=headers(content_type, with_token), timeout=60
        )
        report("requests", case, response.status_code, response.content)
    except Exception as e:  # noqa: BLE001
        report("requests", case, error=e)


for case in CASES:
    with_urllib(*case)
    with_requests(*case)
sys.exit(0)
