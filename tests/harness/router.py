"""The invoke router in front of the emulator.

moto's Step Functions executor sends Lambda invokes to http://localhost:$MOTO_PORT; the router
listens there, runs `POST /2015-03-31/functions/<fn>/invocations` on the real Rust binaries
(FunctionHost) and forwards every other request to moto unchanged. The Rust functions' own SDK
calls come through the router too, so faults can be injected into any AWS call (`Fault`).
CloudWatch Logs Insights calls (StartQuery, GetQueryResults, StopQuery) are answered here
(`LogsInsights`, evaluating queries with tests/harness/insights.py over moto's log events).
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import insights
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


# CloudWatch Logs Insights in the emulator (moto's own StartQuery knows only fields/sort/limit):
# StartQuery / GetQueryResults / StopQuery are answered here, evaluating the query with
# tests/harness/insights.py over the events moto holds in the log groups.
INSIGHTS_ACTIONS = {"StartQuery", "GetQueryResults", "StopQuery"}
PAGE_ROWS = 10_000  # GetQueryResults: at most 10,000 rows a request (maxItems)
# A Fault on "StartQuery" with one of these codes lets the call succeed and the query end with that
# status (GetQueryResults "status" values, API reference) instead of Complete.
QUERY_OUTCOMES = {"Failed", "Timeout", "Cancelled"}
TERMINAL_STATUSES = {"Complete", "Failed", "Cancelled", "Timeout"}


class InsightsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400, extra: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra or {}


@dataclass
class InsightsQuery:
    query_id: str
    groups: list[str]
    region: str
    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, inclusive
    text: str
    compiled: "insights.Query"
    limit: int | None
    steps: list[str]  # statuses GetQueryResults shows before the outcome, one per call
    outcome: str  # Complete, or an injected Failed / Timeout / Cancelled
    status: str = "Scheduled"
    result: "insights.Result | None" = None
    done: threading.Event = field(default_factory=threading.Event)  # evaluation finished


class LogsInsights:
    """The Logs Insights API over moto's log groups (CloudWatch Logs API reference: StartQuery,
    GetQueryResults, StopQuery). Each query shows `steps` (default: Running once) on successive
    GetQueryResults calls, then its outcome, so that pollers are exercised. It is evaluated in the
    background from StartQuery on, over the events present then, and stays Running until evaluated:
    no call waits on an evaluation. `max_concurrent`: queries not yet ended beyond which StartQuery fails with
    LimitExceededException (the account's concurrent-query quota; None = no quota)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queries: dict[str, InsightsQuery] = {}
        self.steps: list[str] = ["Running"]
        self.max_concurrent: int | None = None

    def reset(self):
        with self.lock:
            self.queries.clear()
            self.steps = ["Running"]
            self.max_concurrent = None

    def running(self) -> int:
        return sum(q.status not in TERMINAL_STATUSES for q in self.queries.values())

    def handle(self, action: str, req: dict, region: str, outcome: str = "Complete") -> dict:
        with self.lock:
            if action == "StartQuery":
                return self.start_query(req, region, outcome)
            q = self.queries.get(req.get("queryId", ""))
            if q is None:
                raise InsightsError("ResourceNotFoundException", f"query {req.get('queryId')!r} does not exist")
            if action == "StopQuery":
                # StopQuery "stops a CloudWatch Logs Insights query that is in progress"; one that
                # already ended answers success false here (the reference does not say which).
                if q.status in TERMINAL_STATUSES:
                    return {"success": False}
                q.status, q.steps = "Cancelled", []
                return {"success": True}
        return self.get_query_results(q, req)

    def start_query(self, req: dict, region: str, outcome: str) -> dict:
        # "A StartQuery operation must include exactly one of logGroupName, logGroupNames or
        # logGroupIdentifiers" (StartQuery API reference); up to 50 log groups.
        given = [k for k in ("logGroupName", "logGroupNames", "logGroupIdentifiers") if req.get(k)]
        if len(given) != 1:
            raise InsightsError("InvalidParameterException", "give exactly one of logGroupName, logGroupNames, "
                                                             "logGroupIdentifiers")
        raw = req[given[0]]
        groups = [raw] if isinstance(raw, str) else list(raw)
        if len(groups) > 50:
            raise InsightsError("InvalidParameterException", "at most 50 log groups a query")
        # An identifier may be a log group ARN (arn:aws:logs:region:account:log-group:NAME[:*]).
        groups = [g.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in g else g for g in groups]
        backend = _logs_backend(region)
        for g in groups:
            if g not in backend.groups:
                raise InsightsError("ResourceNotFoundException", f"The specified log group does not exist: {g}")
        if "startTime" not in req or "endTime" not in req or "queryString" not in req:
            raise InsightsError("InvalidParameterException", "startTime, endTime and queryString are required")
        start, end = int(req["startTime"]), int(req["endTime"])
        if end < start:
            raise InsightsError("InvalidParameterException", "endTime must not be before startTime")
        limit = req.get("limit")
        if limit is not None and not 1 <= int(limit) <= insights.MAX_RESULT_ROWS:
            raise InsightsError("InvalidParameterException", f"limit must be 1..{insights.MAX_RESULT_ROWS}")
        text = req["queryString"]
        if len(text) > 10000:  # queryString: length 0..10000 (StartQuery API reference)
            raise InsightsError("InvalidParameterException", "queryString is longer than 10000 characters")
        try:
            compiled = insights.Query(text)
        except insights.QueryError as e:
            where = {"startCharOffset": e.offset or 0, "endCharOffset": e.offset or 0}
            raise InsightsError("MalformedQueryException", f"{e} [Logs Insights test-bed evaluator]",
                                extra={"queryCompileError": {"location": where, "message": str(e)}}) from None
        # The concurrent-query quota (CloudWatch Logs quotas; "You can have up to 30 concurrent
        # CloudWatch Logs Insights queries" in the StartQuery reference, 100 on newer pages):
        # StartQuery answers LimitExceededException beyond it.
        if self.max_concurrent is not None and self.running() >= self.max_concurrent:
            raise InsightsError("LimitExceededException",
                                f"Account maximum query concurrency limit of [{self.max_concurrent}] reached.")
        q = InsightsQuery(str(uuid.uuid4()), groups, region, start, end, text, compiled,
                          int(limit) if limit is not None else None, list(self.steps), outcome)
        self.queries[q.query_id] = q
        if outcome == "Complete":
            threading.Thread(target=self._evaluate, args=(q,), daemon=True).start()
        else:
            q.done.set()
        return {"queryId": q.query_id}

    def _evaluate(self, q: InsightsQuery):
        try:
            q.result = q.compiled.run(_events(q), q.limit)
        except Exception:  # noqa: BLE001 - an evaluator bug shows as a Failed query, not a hang
            q.outcome = "Failed"
        q.done.set()

    def get_query_results(self, q: InsightsQuery, req: dict | None = None) -> dict:
        # GetQueryResults API reference: `maxItems` "The maximum is 10,000 log events per request.
        # You can retrieve up to 100,000 log event results from a query by paginating with the
        # nextToken". Without maxItems, up to 10,000 here (not documented); a page's nextToken is
        # given while rows remain after it, and only once the query is Complete.
        req = req or {}
        max_items = int(req.get("maxItems", PAGE_ROWS))
        if not 1 <= max_items <= PAGE_ROWS:
            raise InsightsError("InvalidParameterException", f"maxItems must be 1..{PAGE_ROWS}")
        token = req.get("nextToken")
        offset = 0
        if token is not None:
            qid, _, at = str(token).rpartition(":")
            if qid != q.query_id or not at.isdigit():
                raise InsightsError("InvalidParameterException", "The specified nextToken is not valid")
            offset = int(at)
        with self.lock:
            if q.status not in TERMINAL_STATUSES:
                if q.steps:
                    q.status = q.steps.pop(0)
                elif q.done.is_set():
                    q.status = q.outcome
                else:
                    q.status = "Running"  # still being evaluated
        r = q.result
        stats = {"recordsMatched": float(r.records_matched if r else 0),
                 "recordsScanned": float(r.records_scanned if r else 0),
                 "bytesScanned": float(r.bytes_scanned if r else 0)}
        rows = r.rows if r and q.status == "Complete" else []
        out = {"queryLanguage": "CWLI", "results": rows[offset:offset + max_items], "statistics": stats,
               "status": q.status}
        if offset + max_items < len(rows):
            out["nextToken"] = f"{q.query_id}:{offset + max_items}"
        return out


def _logs_backend(region: str):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.logs.models import logs_backends
    return logs_backends[DEFAULT_ACCOUNT_ID][region]


def _events(q: InsightsQuery):
    """The query's events, read from moto in-process: those of its log groups with a timestamp in
    [startTime, endTime] (both inclusive, StartQuery API reference; the end second is taken whole)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    backend = _logs_backend(q.region)
    lo, hi = q.start * 1000, q.end * 1000 + 999
    out = []
    for name in q.groups:
        group = backend.groups.get(name)
        if group is None:
            continue
        for stream_name, stream in list(group.streams.items()):
            for e in list(stream.events):
                if lo <= e.timestamp <= hi:
                    out.append({"@timestamp": e.timestamp, "@message": e.message, "@logStream": stream_name,
                                "@log": f"{DEFAULT_ACCOUNT_ID}:{name}", "@ingestionTime": e.ingestion_time})
    out.sort(key=lambda e: e["@timestamp"])
    return out


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
        self.insights = LogsInsights()  # Logs Insights queries, evaluated here (LogsInsights)
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
        elif fault and not (action == "StartQuery" and fault.code in QUERY_OUTCOMES):
            return self._fault(fault)
        if action in INSIGHTS_ACTIONS and (self.headers.get("X-Amz-Target") or "").startswith("Logs_"):
            return self._insights(action, body, fault.code if fault and fault.code in QUERY_OUTCOMES else "Complete")
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

    def _insights(self, action: str, body: bytes, outcome: str):
        scope = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", self.headers.get("Authorization", ""))
        region = scope.group(1) if scope else "us-east-1"
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        try:
            out = self.server.insights.handle(action, json.loads(body or b"{}"), region, outcome)
        except InsightsError as e:
            err = json.dumps({"__type": e.code, "message": e.message, **e.extra}).encode()
            return self._send(e.status, err, {**headers, "x-amzn-ErrorType": e.code})
        self._send(200, json.dumps(out).encode(), headers)

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
