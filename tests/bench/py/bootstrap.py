"""A minimal Lambda Runtime API loop for the Python baseline: imports the handler module (its
module-level boto3 clients are the init), then GET next / POST response, as AWS's Python
runtime does (AWS's own bootstrap does more, so this flatters Python, if anything)."""
import importlib
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
module = importlib.import_module(sys.argv[1])
base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
while True:
    with urllib.request.urlopen(f"{base}/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    try:
        body, kind = json.dumps(module.handler(event, None)).encode(), "response"
    except Exception as e:  # noqa: BLE001  (reported to the runtime API like AWS's bootstrap)
        body, kind = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode(), "error"
    urllib.request.urlopen(urllib.request.Request(f"{base}/{request_id}/{kind}", data=body, method="POST")).read()
