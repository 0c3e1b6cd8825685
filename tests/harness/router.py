"""The invoke router in front of the emulator.

moto's Step Functions executor sends Lambda invokes to http://localhost:$MOTO_PORT; the router
listens there, runs `POST /2015-03-31/functions/<fn>/invocations` on the real Rust binaries
(FunctionHost) and forwards every other request to moto unchanged. The Rust functions' own SDK
calls come through the router too, so faults can be injected into any AWS call (`Fault`).
"""
from __future__ import annotations

import contextlib
import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .lambda_host import FunctionHost, InvokeError

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Fault:
    """Answer the next `times` calls of `action` (e.g. "DeleteFlowLogs") with an error."""
    action: str
    status: int
    code: str
    times: int = 1
    caller: str | None = None  # only calls of this function (its SDK app id)
    injected: int = 0


def aws_action(headers, body: bytes) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if body and b"Action=" in body:
        return urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return ""


# EC2 Describe calls that AWS pages by MaxResults/NextToken but moto answers in one page.
EC2_PAGED_SETS = {"DescribeNetworkInterfaces": "networkInterfaceSet", "DescribeFlowLogs": "flowLogSet"}


def page_like_ec2(action: str, request: bytes, response: bytes) -> bytes:
    """Pages an EC2 Describe answer as the EC2 API reference says (moto ignores MaxResults): a
    request with MaxResults gets at most that many items and a nextToken for the rest; one without
    gets everything. The token is the index of the next item."""
    import xml.etree.ElementTree as ET
    params = urllib.parse.parse_qs(request.decode(errors="replace"))
    if action not in EC2_PAGED_SETS or "MaxResults" not in params:
        return response
    size, start = int(params["MaxResults"][0]), int(params.get("NextToken", ["0"])[0])
    root = ET.fromstring(response)
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    q = (lambda t: f"{{{ns}}}{t}") if ns else (lambda t: t)
    item_set = root.find(q(EC2_PAGED_SETS[action]))
    if item_set is None:
        return response
    items = list(item_set)
    for item in items:
        item_set.remove(item)
    item_set.extend(items[start:start + size])
    if start + size < len(items):
        ET.SubElement(root, q("nextToken")).text = str(start + size)
    ET.register_namespace("", ns)
    return ET.tostring(root, encoding="utf-8")


IAM_PREFIX = {"monitoring": "cloudwatch"}
TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                         "ConditionCheck": "ConditionCheckItem"}


def iam_actions(headers, action: str, body: bytes) -> list[str]:
    """The IAM actions an API call needs: service from the SigV4 scope; a DynamoDB transaction
    needs the action of each of its items."""
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", headers.get("Authorization", ""))
    service = IAM_PREFIX.get(scope.group(1), scope.group(1)) if scope else "unknown"
    if service == "dynamodb" and action == "TransactWriteItems":
        items = json.loads(body or b"{}").get("TransactItems", [])
        return sorted({f"dynamodb:{TRANSACT_ITEM_ACTIONS[k]}" for item in items for k in item})
    return [f"{service}:{action}"]


class Router(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, moto_port: int):
        self.moto_port = moto_port
        self.functions: dict[str, FunctionHost] = {}
        self.faults: list[Fault] = []
        self.calls: list[str] = []
        # (caller, action) of every AWS call, caller = the SDK's app id (AWS_SDK_UA_APP_ID).
        self.callers: set[tuple[str, str]] = set()
        self.lock = threading.Lock()
        self.dynamodb_lock = threading.Lock()
        self.page_ec2 = True  # answer EC2 Describe calls in pages as AWS does (page_like_ec2)
        super().__init__(("127.0.0.1", port), _Handler)

    def take_fault(self, action: str, caller: str | None = None) -> Fault | None:
        with self.lock:
            self.calls.append(action)
            for f in self.faults:
                if f.action == action and f.injected < f.times and f.caller in (None, caller):
                    f.injected += 1
                    return f
        return None


class _Handler(BaseHTTPRequestHandler):
    server: Router
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urllib.parse.unquote(self.path)
        if self.command == "POST" and path.startswith("/2015-03-31/functions/") and path.endswith("/invocations"):
            return self._invoke(path, body)
        action = aws_action(self.headers, body)
        ua = f"{self.headers.get('x-amz-user-agent', '')} {self.headers.get('User-Agent', '')}"
        app = re.search(r"\bapp/([\w-]+)", ua)
        caller = app.group(1) if app else None
        if caller and action:
            for iam_action in iam_actions(self.headers, action, body):
                self.server.callers.add((caller, iam_action))
        fault = self.server.take_fault(action, caller)
        if fault and fault.code == "Slow":
            # A hung call: the caller gives up and retries; this one still reaches the service
            # afterwards, as a request that timed out on the client may still be applied.
            time.sleep(fault.status)
        elif fault:
            return self._fault(fault)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.moto_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        headers["Host"] = self.headers.get("Host", f"127.0.0.1:{self.server.moto_port}")
        # moto evaluates DynamoDB conditions and writes without a lock, so two threads can both
        # pass a condition; DynamoDB itself applies conditional writes atomically. Serializing
        # DynamoDB requests here restores that guarantee (and only that).
        serialize = self.server.dynamodb_lock if (self.headers.get("X-Amz-Target") or "").startswith("DynamoDB_") \
            else contextlib.nullcontext()
        with serialize:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        if self.server.page_ec2 and resp.status == 200 and action in EC2_PAGED_SETS:
            data = page_like_ec2(action, body, data)
        self._send(resp.status, data, {k: v for k, v in resp.getheaders() if k.lower() not in HOP_HEADERS})
        conn.close()

    def _fault(self, fault: Fault):
        if self.headers.get("X-Amz-Target"):
            body = json.dumps({"__type": fault.code, "message": f"injected {fault.code}"}).encode()
            return self._send(fault.status, body, {"Content-Type": "application/x-amz-json-1.0",
                                                   "x-amzn-ErrorType": fault.code,
                                                   "x-amzn-RequestId": str(uuid.uuid4())})
        scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", self.headers.get("Authorization", ""))
        if scope and scope.group(1) == "ec2":
            body = (f"<Response><Errors><Error><Code>{fault.code}</Code><Message>injected {fault.code}</Message>"
                    f"</Error></Errors><RequestID>fault</RequestID></Response>").encode()
        else:
            body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code><Message>injected "
                    f"{fault.code}</Message></Error><RequestId>fault</RequestId></ErrorResponse>").encode()
        self._send(fault.status, body, {"Content-Type": "text/xml"})

    def _invoke(self, path: str, body: bytes):
        name = path[len("/2015-03-31/functions/"):-len("/invocations")].split(":")
        # arn:aws:lambda:region:account:function:NAME[:qualifier] or a plain name
        fn = name[6] if len(name) >= 7 and name[0] == "arn" else name[0]
        host = self.server.functions.get(fn)
        if host is None:
            msg = json.dumps({"Type": "User", "message": f"Function not found: {fn}"}).encode()
            return self._send(404, msg, {"Content-Type": "application/json",
                                         "x-amzn-ErrorType": "ResourceNotFoundException"})
        fault = self.server.take_fault(f"Invoke:{fn}")
        if fault and fault.code == "Slow":
            time.sleep(fault.status)  # the invoke is held back, then runs
            fault = None
        if fault and fault.code == "Sandbox.Timedout":
            # The function runs (its side effects happen) but Lambda reports it timed out.
            try:
                host.invoke(body)
            except InvokeError:
                pass
            msg = json.dumps({"errorType": "Sandbox.Timedout",
                              "errorMessage": "Task timed out after 30.00 seconds (injected)"}).encode()
            return self._send(200, msg, {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled",
                                         "X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": str(uuid.uuid4())})
        if fault:
            msg = json.dumps({"message": f"injected {fault.code}"}).encode()
            return self._send(fault.status, msg, {"Content-Type": "application/json", "x-amzn-ErrorType": fault.code,
                                                  "x-amzn-RequestId": str(uuid.uuid4())})
        asynchronous = self.headers.get("X-Amz-Invocation-Type") == "Event"
        if asynchronous:
            threading.Thread(target=lambda: _swallow(host, body), daemon=True).start()
            return self._send(202, b"", {"X-Amz-Executed-Version": "$LATEST"})
        try:
            result, is_error = host.invoke(body)
        except InvokeError as e:
            result = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": str(e)}).encode()
            is_error = True
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST",
                   "x-amzn-RequestId": str(uuid.uuid4())}
        if is_error:
            headers["X-Amz-Function-Error"] = "Unhandled"
        self._send(200, result, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def _swallow(host: FunctionHost, body: bytes):
    try:
        host.invoke(body)
    except InvokeError:
        pass


def serve(router: Router):
    t = threading.Thread(target=router.serve_forever, daemon=True)
    t.start()
    return t
