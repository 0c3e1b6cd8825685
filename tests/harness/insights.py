"""A small evaluator of CloudWatch Logs Insights queries: exactly the subset the recorder's queries
(queries/*.query) use, for the offline test bed (moto's Logs Insights knows only fields/sort/limit).

Anything outside the subset is REFUSED with `Unsupported` (a valid Insights feature this evaluator
does not model) or `QueryError` (not valid as far as the evaluator knows), so a query cannot
silently use something the test bed does not evaluate. Add a feature here, with its doc page,
before a query uses it.

Modelled, following the Logs Insights QL pages of the CloudWatch Logs User Guide:
- "CloudWatch Logs Insights language query syntax" (CWL_QuerySyntax.html): commands separated by
  `|`, comments from `#` to the end of the line.
- `parse` (CWL_QuerySyntax-Parse.html), glob mode only: `parse [field] "pattern" as a, b, ...`,
  one alias per `*`; `field` defaults to @message. "If a log event doesn't match the specified
  pattern, you still see it in the results, but without the extracted fields": such a row keeps
  going with those fields absent (null). The pattern is not anchored and each `*` is as short as
  possible except a trailing `*`, which takes the rest of the value: what the page's examples
  (`"url=*" as url`, `"user=*, method:*, latency := *"`) imply; the page does not state it.
- `filter` (CWL_QuerySyntax-Filter.html): comparisons `= != < > <= >=`, `and`, `or`, `not`,
  parentheses, `in [...]` / `not in [...]` (complete-string set membership), `like /regex/` and
  `like "substring"` (and `not like`).
- `stats` (CWL_QuerySyntax-Stats.html): `sum(field)`, `min(field)`, `max(field)`, `count(*)`,
  `count()`, `count(field)`, each
  with an optional `as` name (without it the column is named as written, e.g. `sum(bytes)`),
  `by field, ...`; one stats command a query.
- `sort` (CWL_QuerySyntax-Sort.html): `sort f desc|asc[, g desc|asc]` (the direction is required
  here: the evaluator does not guess a default), in the page's order: ascending, non-number values
  (natural order) before numbers; descending is the reverse. Rows without the field come last
  either way (not documented).
- `limit` (CWL_QuerySyntax-Limit.html): "If you omit limit, the query defaults to returning up to
  10,000 log events. You can specify a limit value of up to 100,000"; StartQuery's `limit` (API
  reference): "The maximum limit is 100,000 ... only supported for Logs Insights QL", read through
  GetQueryResults at most 10,000 rows a request with `nextToken` (the router pages them). Limits of
  1..100,000 are accepted; Regions or accounts where only 1..10,000 is allowed (the older API
  reference) are not modelled.
- `fields` / `display` (CWL_QuerySyntax-Fields.html, -Display.html), with the functions of
  "Boolean, comparison, numeric, datetime, and other functions"
  (CWL_QuerySyntax-operations-functions.html) the queries use: arithmetic `+ - * / %`,
  `isIpInSubnet(field, "cidr")` (IP address string functions: true when the value is a valid IPv4
  or IPv6 address within the subnet), `concat`, `replace` (string functions), `fromMillis`
  (datetime functions).

Not confirmed by the docs, modelled as stated (see README "Emulator gaps"):
- Types: parsed values are strings. A comparison of two values that both read as numbers compares
  numbers ("Comparison operations accept all data types as arguments"); otherwise `=`/`!=` compare
  strings and `< > <= >=` compare strings only when neither side is a number. A comparison with an
  absent (null) field is false; `not` negates it.
- `sum`, `min` and `max` take the values that read as numbers and ignore the others; a group with
  none has no such column (null); integers stay exact integers.
- Result values are strings; a row omits null fields; a non-stats row carries `@ptr`; timestamps
  are written `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
- Result rows of a stats query come in first-seen group order unless sorted; ties keep that order.
"""
from __future__ import annotations

import datetime as _dt
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

MAX_RESULT_ROWS = 100_000  # "limit" page and the StartQuery API reference (maximum, Logs Insights QL)
DEFAULT_RESULT_ROWS = 10_000  # "If you omit limit, the query defaults to returning up to 10,000 log events"
COMMANDS = ("parse", "filter", "stats", "sort", "limit", "fields", "display")
# Logs Insights commands from the query syntax page that the evaluator does not model.
KNOWN_UNMODELLED_COMMANDS = {
    "anomaly", "dedup", "diff", "filterIndex", "pattern", "unmask", "unnest", "lookup", "join", "where",
    "accum", "SOURCE", "source", "eval", "head", "top", "rename",
}
SCALAR_FUNCTIONS = ("isIpInSubnet", "concat", "replace", "fromMillis")
AGGREGATES = ("sum", "count", "min", "max")


class QueryError(Exception):
    """The query is not valid (as far as the evaluator knows). `offset`: character offset."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message if offset is None else f"{message} (at character {offset})")
        self.offset = offset


class Unsupported(QueryError):
    """A Logs Insights feature the test bed's evaluator does not model: refused, never guessed."""


# ---------------------------------------------------------------------------------------------
# Tokens

@dataclass
class Tok:
    kind: str  # name, str, num, op, regex, bq
    text: str
    value: Any
    pos: int


_TOKEN = re.compile(r"""
  (?P<ws>\s+)
| (?P<comment>\#[^\n]*)
| (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
| (?P<bq>`[^`]*`)
| (?P<num>\d+(?:\.\d+)?(?![\w.]))
| (?P<dur>\d+[A-Za-z]\w*)
| (?P<name>[@A-Za-z_][\w@.]*)
| (?P<op><=|>=|!=|=~|[=<>()\[\],|*+\-/%^])
""", re.VERBOSE)

_UNESCAPE = re.compile(r"\\(.)")


def _regex_allowed(prev: list[Tok]) -> bool:
    """A `/` opens a regular expression where no value precedes it (after `like`, an operator...)."""
    if not prev:
        return True
    p = prev[-1]
    if p.kind == "name":
        if p.text in ("like", "and", "or", "not", "in", "parse"):
            return True
        return len(prev) >= 2 and prev[-2].kind == "name" and prev[-2].text == "parse"
    return p.kind == "op" and p.text not in (")", "]")


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(text):
        if text[i] == "/" and _regex_allowed(toks):
            j, buf = i + 1, []
            while j < len(text) and text[j] != "/":
                if text[j] == "\\" and j + 1 < len(text):
                    buf.append(text[j:j + 2] if text[j + 1] != "/" else "/")
                    j += 2
                    continue
                if text[j] == "\n":
                    break
                buf.append(text[j])
                j += 1
            if j >= len(text) or text[j] != "/":
                raise QueryError("unterminated regular expression", i)
            toks.append(Tok("regex", text[i:j + 1], "".join(buf), i))
            i = j + 1
            continue
        m = _TOKEN.match(text, i)
        if not m:
            raise QueryError(f"unexpected character {text[i]!r}", i)
        kind = m.lastgroup
        s = m.group()
        if kind == "str":
            toks.append(Tok("str", s, _UNESCAPE.sub(r"\1", s[1:-1]), i))
        elif kind == "bq":
            toks.append(Tok("name", s, s[1:-1], i))
        elif kind == "num":
            toks.append(Tok("num", s, float(s) if "." in s else int(s), i))
        elif kind == "dur":
            toks.append(Tok("dur", s, s, i))
        elif kind in ("name", "op"):
            toks.append(Tok(kind, s, s, i))
        i = m.end()
    return toks


# ---------------------------------------------------------------------------------------------
# Values

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def as_number(v: Any) -> int | float | None:
    if isinstance(v, str):
        return _str_number(v)
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return v
    return None


@functools.lru_cache(maxsize=1 << 16)
def _str_number(v: str) -> int | float | None:
    s = v.strip()
    if not _NUMBER.fullmatch(s):
        return None
    try:
        return int(s)
    except ValueError:
        return float(s)


def render(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 53:
        return str(int(v))
    return str(v)


def compare(a: Any, b: Any, op: str) -> bool:
    if a is None or b is None:
        return False
    if op in ("=", "!=") and a.__class__ is str and b.__class__ is str and a == b:
        return op == "="
    na, nb = as_number(a), as_number(b)
    if na is not None and nb is not None:
        x, y = na, nb
    elif op in ("=", "!="):
        x, y = render(a), render(b)
    elif na is None and nb is None:
        x, y = render(a), render(b)
    else:
        return False
    return {"=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]


@functools.lru_cache(maxsize=1 << 12)
def format_millis(ms: int | float) -> str:
    t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


# ---------------------------------------------------------------------------------------------
# Parser

Row = dict
Expr = Callable[[Row], Any]


class _Parser:
    def __init__(self, toks: list[Tok], end: int):
        self.toks, self.i, self.end = toks, 0, end

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, text: str, kind: str | None = None) -> bool:
        t = self.peek()
        return t is not None and t.text == text and (kind is None or t.kind == kind) and t.kind != "str"

    def take(self, text: str | None = None, kind: str | None = None) -> Tok:
        t = self.peek()
        if t is None:
            raise QueryError(f"expected {text or kind}, found the end of the command", self.end)
        if (text is not None and (t.text != text or t.kind == "str")) or (kind is not None and t.kind != kind):
            raise QueryError(f"expected {text or kind}, found {t.text!r}", t.pos)
        self.i += 1
        return t

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def name(self) -> str:
        t = self.take(kind="name")
        if t.text in ("and", "or", "not", "in", "like", "as", "by"):
            raise QueryError(f"expected a field name, found keyword {t.text!r}", t.pos)
        return t.value

    # expressions ----------------------------------------------------------------------------
    def expr(self) -> Expr:
        return self.or_()

    def or_(self) -> Expr:
        parts = [self.and_()]
        while self.at("or", "name"):
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]

        def any_true(r):
            for p in parts:
                if p(r) is True:
                    return True
            return False
        return any_true

    def and_(self) -> Expr:
        parts = [self.not_()]
        while self.at("and", "name"):
            self.take()
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]

        def all_true(r):
            for p in parts:
                if p(r) is not True:
                    return False
            return True
        return all_true

    def not_(self) -> Expr:
        if self.at("not", "name") and not (self.peek(1) and self.peek(1).text == "in"):
            self.take()
            inner = self.not_()
            return lambda r: inner(r) is not True
        return self.cmp()

    def cmp(self) -> Expr:
        left = self.add()
        t = self.peek()
        if t is None:
            return left
        if t.kind == "op" and t.text in ("=", "!=", "<", ">", "<=", ">="):
            self.take()
            right, op = self.add(), t.text
            return lambda r: compare(left(r), right(r), op)
        if t.kind == "op" and t.text == "=~":
            raise Unsupported("the `=~` operator is not modelled (use `like`)", t.pos)
        negate = False
        nxt = self.peek(1)
        if t.kind == "name" and t.text == "not" and nxt is not None and nxt.text in ("in", "like"):
            self.take()
            negate, t = True, nxt
        if t.kind == "name" and t.text == "like":
            self.take()
            test = self.like(left, t)
        elif t.kind == "name" and t.text == "in":
            self.take()
            test = self.in_list(left)
        else:
            return left
        return (lambda r: not test(r)) if negate else test

    def like(self, left: Expr, t: Tok) -> Expr:
        """`like /regex/` (a match anywhere in the value) or `like "text"` (a substring)."""
        pat = self.peek()
        if pat is not None and pat.kind == "regex":
            self.take()
            try:
                rx = re.compile(pat.value)
            except re.error as e:
                raise QueryError(f"bad regular expression {pat.text}: {e}", pat.pos) from None
            return lambda r: (lambda v: v is not None and rx.search(render(v)) is not None)(left(r))
        if pat is not None and pat.kind == "str":
            self.take()
            sub = pat.value
            return lambda r: (lambda v: v is not None and sub in render(v))(left(r))
        raise QueryError("`like` takes a /regular expression/ or a \"string\"", t.pos)

    def in_list(self, left: Expr) -> Expr:
        """`in [literal, ...]`: equal (as `=` compares) to one of the literals."""
        self.take("[")
        values = []
        while True:
            v = self.take()
            if v.kind not in ("str", "num"):
                raise QueryError(f"`in [...]` takes string or number literals, found {v.text!r}", v.pos)
            values.append(v.value)
            if self.at("]"):
                self.take()
                break
            self.take(",")
        return lambda r: (lambda x: any(compare(x, v, "=") for v in values))(left(r))

    def add(self) -> Expr:
        left = self.mul()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().text in ("+", "-"):
            op = self.take().text
            left = _arith(left, self.mul(), op)
        return left

    def mul(self) -> Expr:
        left = self.unary()
        while self.peek() is not None and self.peek().kind == "op" and self.peek().text in ("*", "/", "%", "^"):
            t = self.take()
            if t.text == "^":
                raise Unsupported("the `^` operator is not modelled", t.pos)
            left = _arith(left, self.unary(), t.text)
        return left

    def unary(self) -> Expr:
        if self.at("-", "op"):
            self.take()
            inner = self.unary()
            return lambda r: (lambda n: None if n is None else -n)(as_number(inner(r)))
        return self.primary()

    def primary(self) -> Expr:
        t = self.take()
        if t.kind in ("str", "num"):
            v = t.value
            return lambda r: v
        if t.kind == "regex":
            raise QueryError(f"a regular expression {t.text} is only valid after `like`", t.pos)
        if t.kind == "dur":
            raise Unsupported(f"time-unit literals ({t.text}) are not modelled", t.pos)
        if t.kind == "op" and t.text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if t.kind == "name":
            if self.at("(", "op"):
                return self.call(t)
            if t.text in ("and", "or", "not", "in", "like", "as", "by"):
                raise QueryError(f"unexpected keyword {t.text!r}", t.pos)
            key = t.value
            return lambda r: r.get(key)
        raise QueryError(f"unexpected {t.text!r}", t.pos)

    def call(self, fn: Tok) -> Expr:
        name = fn.value
        if name in AGGREGATES:
            raise QueryError(f"`{name}()` is an aggregation function: only valid in `stats`", fn.pos)
        if name not in SCALAR_FUNCTIONS:
            raise Unsupported(f"function `{name}` is not modelled by the test bed's Insights evaluator "
                              f"(modelled: {', '.join(SCALAR_FUNCTIONS)}; in stats: {', '.join(AGGREGATES)})", fn.pos)
        self.take("(")
        args: list[Expr] = []
        raw: list[Tok] = []
        if not self.at(")"):
            while True:
                raw.append(self.peek())
                args.append(self.expr())
                if self.at(")"):
                    break
                self.take(",")
        self.take(")")
        if name == "isIpInSubnet":
            if len(args) != 2 or raw[1].kind != "str":
                raise QueryError('isIpInSubnet takes (field, "cidr")', fn.pos)
            try:
                net = ipaddress.ip_network(raw[1].value, strict=False)
            except ValueError:
                raise QueryError(f"isIpInSubnet: {raw[1].value!r} is not a subnet", raw[1].pos) from None
            ip = args[0]
            return lambda r: _in_subnet(ip(r), net)
        if name == "concat":
            if not args:
                raise QueryError("concat takes at least one argument", fn.pos)
            return lambda r: "".join("" if v is None else render(v) for v in (a(r) for a in args))
        if name == "replace":
            if len(args) != 3:
                raise QueryError("replace takes (value, find, replacement)", fn.pos)
            s, f, w = args
            return lambda r: (lambda v, x, y: None if v is None else render(v).replace(render(x), render(y)))(
                s(r), f(r), w(r))
        if name == "fromMillis":
            if len(args) != 1:
                raise QueryError("fromMillis takes one argument", fn.pos)
            a = args[0]
            return lambda r: (lambda n: None if n is None else format_millis(n))(as_number(a(r)))
        raise AssertionError(name)


def _arith(left: Expr, right: Expr, op: str) -> Expr:
    def f(r):
        a, b = as_number(left(r)), as_number(right(r))
        if a is None or b is None:
            return None
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return None
        return a / b if op == "/" else a % b
    return f


def _in_subnet(v: Any, net) -> bool:
    if v is None:
        return False
    try:
        ip = ipaddress.ip_address(render(v))
    except ValueError:
        return False
    return ip.version == net.version and ip in net


# ---------------------------------------------------------------------------------------------
# Commands

@dataclass
class Agg:
    fn: str
    arg: str | None  # field name; None for count(*) / count()
    name: str


@dataclass
class Command:
    kind: str
    pos: int
    expr: Expr | None = None
    rx: re.Pattern | None = None
    source: str = "@message"
    names: list[str] = field(default_factory=list)
    exprs: list[tuple[str, Expr]] = field(default_factory=list)
    aggs: list[Agg] = field(default_factory=list)
    keys: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    n: int = 0
    split: Callable[[str], list[str] | None] | None = None


def glob_splitter(pattern: str):
    """For a pattern `*<sep>*<sep>...*` with one separator throughout (wildcards at both ends), the
    same match as glob_regex's (each separator's first occurrence after the previous one), by
    str.split: the recorder's flow-log patterns, at a fraction of the cost."""
    parts = pattern.split("*")
    if len(parts) < 3 or parts[0] or parts[-1] or len(set(parts[1:-1])) != 1 or not parts[1]:
        return None
    sep, n = parts[1], len(parts) - 2

    def split(v: str):
        out = v.split(sep, n)
        return out if len(out) == n + 1 else None
    return split


def glob_regex(pattern: str) -> re.Pattern:
    parts = pattern.split("*")
    out = []
    for k, p in enumerate(parts):
        out.append(re.escape(p))
        if k < len(parts) - 1:
            last = k == len(parts) - 2 and parts[-1] == ""
            out.append("(.*)" if last else "(.*?)")
    return re.compile("".join(out), re.DOTALL)


def _split_commands(toks: list[Tok]) -> list[list[Tok]]:
    out, cur = [], []
    for t in toks:
        if t.kind == "op" and t.text == "|":
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    out.append(cur)
    return out


def _parse_command(toks: list[Tok], text_len: int) -> Command:
    head = toks[0]
    if head.kind != "name":
        raise QueryError(f"a command starts with its name, found {head.text!r}", head.pos)
    p = _Parser(toks[1:], text_len)
    c = Command(head.text, head.pos)
    if head.text in KNOWN_UNMODELLED_COMMANDS:
        raise Unsupported(f"command `{head.text}` is not modelled by the test bed's Insights evaluator "
                          f"(modelled: {', '.join(COMMANDS)})", head.pos)
    if head.text not in COMMANDS:
        raise Unsupported(f"unknown command `{head.text}` (the test bed's Insights evaluator models "
                          f"{', '.join(COMMANDS)})", head.pos)
    if c.kind == "parse":
        t = p.peek()
        if t is not None and t.kind == "name":
            c.source = p.name()
        t = p.peek()
        if t is not None and t.kind == "regex":
            raise Unsupported("parse with a regular expression is not modelled (glob patterns only)", t.pos)
        pat = p.take(kind="str")
        p.take("as")
        c.names = [p.name()]
        while p.at(","):
            p.take()
            c.names.append(p.name())
        stars = pat.value.count("*")
        if stars != len(c.names):
            raise QueryError(f"parse: {stars} wildcards but {len(c.names)} names (they must be equal)", pat.pos)
        c.rx = glob_regex(pat.value)
        c.split = glob_splitter(pat.value)
    elif c.kind == "filter":
        c.expr = p.expr()
    elif c.kind in ("fields", "display"):
        while True:
            start = p.peek()
            if start is None:
                raise QueryError(f"`{c.kind}` needs at least one field", head.pos)
            if c.kind == "display":
                c.exprs.append((p.name(), None))
            else:
                i0 = p.i
                e = p.expr()
                if p.at("as", "name"):
                    p.take()
                    c.exprs.append((p.name(), e))
                elif start.kind == "name" and p.i == i0 + 1:  # a bare field name
                    c.exprs.append((start.value, None))
                else:
                    raise Unsupported("a computed `fields` expression needs `as name` here", start.pos)
            if not p.at(","):
                break
            p.take()
    elif c.kind == "stats":
        while True:
            fn = p.take(kind="name")
            if fn.value not in AGGREGATES or not p.at("("):
                raise Unsupported(f"stats function `{fn.text}` is not modelled (modelled: sum(field), min(field), "
                                  f"max(field), count(*), count(field))", fn.pos)
            p.take("(")
            arg = None
            if p.at("*", "op"):
                if fn.value != "count":
                    raise QueryError(f"{fn.value}(*) is not valid", fn.pos)
                p.take()
                written = "*"
            elif p.at(")"):
                if fn.value != "count":
                    raise QueryError(f"{fn.value}() needs a field", fn.pos)
                written = ""
            else:
                arg = p.name()
                written = arg
                if not p.at(")"):
                    raise Unsupported(f"{fn.value}() of an expression is not modelled (a field name only)", fn.pos)
            p.take(")")
            name = f"{fn.value}({written})"
            if p.at("as", "name"):
                p.take()
                name = p.name()
            c.aggs.append(Agg(fn.value, arg, name))
            if not p.at(","):
                break
            p.take()
        if p.at("by", "name"):
            p.take()
            while True:
                t = p.peek()
                c.names.append(p.name())
                if p.at("(", "op"):
                    raise Unsupported(f"grouping by a function ({t.text}(...)) is not modelled", t.pos)
                if not p.at(","):
                    break
                p.take()
    elif c.kind == "sort":
        while True:
            f = p.name()
            d = p.peek()
            if d is None or d.text not in ("asc", "desc"):
                raise Unsupported("sort needs an explicit asc or desc here (the default is not modelled)",
                                  d.pos if d else head.pos)
            p.take()
            c.keys.append((f, d.text == "desc"))
            if not p.at(","):
                break
            p.take()
    elif c.kind == "limit":
        if p.at("any", "name"):
            raise Unsupported("`limit any` is not modelled", p.peek().pos)
        t = p.take(kind="num")
        if not isinstance(t.value, int) or not 1 <= t.value <= MAX_RESULT_ROWS:
            raise Unsupported(f"limit {t.text}: the evaluator models limits of 1..{MAX_RESULT_ROWS} (the limit "
                              "page's range)", t.pos)
        c.n = t.value
    if not p.done():
        t = p.peek()
        raise QueryError(f"unexpected {t.text!r} in `{c.kind}`", t.pos)
    return c


@dataclass
class Result:
    rows: list[list[dict[str, str]]]  # GetQueryResults' shape: a list of {field, value} per row
    records_matched: int
    records_scanned: int
    bytes_scanned: int

    def dicts(self) -> list[dict[str, str]]:
        return [{c["field"]: c["value"] for c in row} for row in self.rows]


class Query:
    def __init__(self, text: str):
        self.text = text
        toks = tokenize(text)
        if not toks:
            raise QueryError("empty query")
        segments = _split_commands(toks)
        for s in segments:
            if not s:
                raise QueryError("empty command between `|`")
        self.commands = [_parse_command(s, len(text)) for s in segments]
        if sum(c.kind == "stats" for c in self.commands) > 1:
            raise Unsupported("more than one stats command is not modelled")

    def run(self, events: Iterable[dict], limit: int | None = None) -> Result:
        """`events`: dicts with @timestamp (epoch ms), @message, and optionally @logStream, @log.
        `limit`: StartQuery's limit parameter (the smaller of it and the query's limit applies; with
        neither, 10,000 rows)."""
        scanned = {"records": 0, "bytes": 0}

        def source() -> Iterator[Row]:
            for k, e in enumerate(events):
                msg = e["@message"]
                scanned["records"] += 1
                scanned["bytes"] += len(msg.encode())
                row = {"@message": msg, "@timestamp": format_millis(e["@timestamp"]),
                       "@ptr": f"ptr-{k}"}
                for extra in ("@logStream", "@log", "@ingestionTime"):
                    if extra in e:
                        row[extra] = e[extra]
                yield row

        rows: Iterable[Row] = source()
        columns: list[str] | None = None
        stats_seen = False
        matched = {"n": 0}
        streaming = True
        for c in self.commands:
            if c.kind in ("stats", "sort", "limit") and streaming:
                rows = _count(rows, matched)
                streaming = False
            if c.kind == "parse":
                rows = _parse(rows, c)
            elif c.kind == "filter":
                rows = _filter(rows, c.expr)
            elif c.kind == "fields":
                rows = _fields(rows, c)
                names = [n for n, _ in c.exprs]
                columns = names if stats_seen or columns is None else columns + [n for n in names if n not in columns]
            elif c.kind == "display":
                columns = [n for n, _ in c.exprs]
            elif c.kind == "stats":
                rows = _stats(rows, c)
                columns = c.names + [a.name for a in c.aggs]
                stats_seen = True
            elif c.kind == "sort":
                rows = _sort(list(rows), c.keys)
            elif c.kind == "limit":
                rows = list(rows)[:c.n]
        if streaming:
            rows = _count(rows, matched)
        has_limit = any(c.kind == "limit" for c in self.commands)
        cap = min(limit or (MAX_RESULT_ROWS if has_limit else DEFAULT_RESULT_ROWS), MAX_RESULT_ROWS)
        out = []
        for r in rows:
            if len(out) >= cap:
                break
            cols = columns if columns is not None else ["@timestamp", "@message"]
            if not stats_seen:
                cols = cols + ["@ptr"]
            out.append([{"field": k, "value": render(r[k])} for k in cols if r.get(k) is not None])
        return Result(out, matched["n"], scanned["records"], scanned["bytes"])


def _count(rows: Iterable[Row], matched: dict) -> Iterator[Row]:
    for r in rows:
        matched["n"] += 1
        yield r


def _filter(rows: Iterable[Row], expr: Expr) -> Iterator[Row]:
    return (r for r in rows if expr(r) is True)


def _parse(rows: Iterable[Row], c: Command) -> Iterator[Row]:
    for r in rows:
        v = r.get(c.source)
        if v is None:
            yield r
            continue
        if c.split is not None:
            values = c.split(render(v))
        else:
            m = c.rx.search(render(v))
            values = m.groups() if m else None
        if values is not None:
            r = dict(r)
            r.update(zip(c.names, values))
        yield r


def _fields(rows: Iterable[Row], c: Command) -> Iterator[Row]:
    for r in rows:
        r = dict(r)
        for name, e in c.exprs:
            if e is not None:
                r[name] = e(r)
        yield r


def _stats(rows: Iterable[Row], c: Command) -> list[Row]:
    groups: dict[tuple, list] = {}
    for r in rows:
        key = tuple(r.get(n) for n in c.names)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = [0 if a.fn == "count" else None for a in c.aggs]
        for k, a in enumerate(c.aggs):
            if a.fn == "count":
                if a.arg is None or r.get(a.arg) is not None:
                    acc[k] += 1
            else:
                n = as_number(r.get(a.arg))
                if n is None:
                    continue
                if acc[k] is None:
                    acc[k] = n
                elif a.fn == "sum":
                    acc[k] += n
                elif a.fn == "min":
                    acc[k] = min(acc[k], n)
                else:
                    acc[k] = max(acc[k], n)
    out = []
    for key, acc in groups.items():
        row = dict(zip(c.names, key))
        row.update({a.name: v for a, v in zip(c.aggs, acc)})
        out.append(row)
    return out


_CHUNK = re.compile(r"[0-9]+|[^0-9]")


def _sort_key(v: Any):
    """The `sort` page's order, ascending: "All non-number values come before all number values";
    non-number values sort naturally: runs of digits by their length, then their value; other
    characters by their Unicode value (a digit run against another character compares as its
    first digit would). Numbers by value. Ties: by the text."""
    s = render(v)
    n = as_number(v)
    if n is not None:
        return (1, [], n, s)
    key = [(0x30, len(t), int(t)) if t[0] in "0123456789" else (ord(t), 0, 0) for t in _CHUNK.findall(s)]
    return (0, key, 0, s)


def _sort(rows: list[Row], keys: list[tuple[str, bool]]) -> list[Row]:
    for f, desc in reversed(keys):  # stable sorts, least significant key first
        present = [r for r in rows if r.get(f) is not None]
        absent = [r for r in rows if r.get(f) is None]
        present.sort(key=lambda r: _sort_key(r[f]), reverse=desc)
        rows = present + absent
    return rows


def compile_query(text: str) -> Query:
    return Query(text)


def run(text: str, events: Iterable[dict], limit: int | None = None) -> Result:
    return Query(text).run(events, limit)
