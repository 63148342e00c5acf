#!/usr/bin/env python3
"""Structural checks of infra/template.yaml against the code: what cfn-lint cannot know.

  (a) every binary in functions/src/bin/*.rs has exactly one AWS::Serverless::Function whose
      Metadata.BuildProperties.Binary names it (rust-cargolambda, CodeUri the workspace root), and every
      function names an existing binary;
  (b) every webhook-<event> function has exactly one HttpApi event, POST /webhooks/{tenantId}/{urlKey}/<event> with
      <event> the binary's name in camel case (webhook-candidate-stage-change: candidateStageChange), and
      no authorizer (open: deliveries are signature-checked in code; neither the event's Auth nor its API's
      DefaultAuthorizer may set one); every admin-<group> function has only HttpApi events, exactly its
      routes in the router's ROUTES (shared/src/admin/http.rs; all under /admin/), each with `Auth: Authorizer: AWS_IAM` except those
      in OPEN_ADMIN_ROUTES (the OAuth callback, reached by a browser redirect from Lever), which have no
      authorizer; connect-pages has exactly the pages' routes (shared/src/pages/mod.rs: ROUTES, all under
      /connect/{tenantId}/, on ConnectApi), with no authorizer (a session from a connect link is checked in code);
      no other function has routes; no two routes of the template collide; and no function's
      environment names an API it is routed on (SAM writes each routed function's ARN into the API's
      definition: a circular dependency CloudFormation rejects and cfn-lint does not see);
  (c) every push-<kind> function, and transcript-ingest, is triggered by exactly one SQS event source (a SAM
      `Type: SQS` event or an AWS::Lambda::EventSourceMapping) on its own queue (<PushKind>Queue,
      TranscriptIngestQueue; used by no other function), with ReportBatchItemFailures; that queue has SSE,
      a dead-letter queue (maxReceiveCount 10, SSE) and a visibility timeout of at least 6x the function's
      timeout;
  (d) no IAM statement has an Action (or NotAction) that is `*` or a wildcard such as `sqs:*`, nor a Resource
      `*` unless every action of the statement is one AWS requires it for (X-Ray); function policies are
      inline statements (a managed policy or SAM policy template could not be checked here), and no SAM
      event attaches a managed policy on every resource (SAM `Type: SQS`, Kinesis, DynamoDB events do);
  (e) every function has its own log group (LoggingConfig.LogGroup: !Ref an AWS::Logs::LogGroup) with
      RetentionInDays;
  (f) transcript-flush and sync each have exactly one schedule event (SAM `Type: Schedule` or `ScheduleV2`),
      enabled, at their SCHEDULED expression, and no other trigger (no other event, no event source mapping);
  (g) a function reaches only the tenant secrets its code uses (`Function::secret_parts`): every
      secretsmanager statement on the tenant secrets names `<prefix>*/webhooks-…` or `<prefix>*/lever-…`,
      the webhook functions only the first and only to read it, the functions that call Lever with a
      tenant's credentials (not the admin functions that also tell or set webhook tokens) only the second;
  (h) every metric a dashboard widget or an alarm names exists: one of namespace LeverBridge is emitted by the code
      (a `counter!`, `gauge!` or `histogram!` with that literal name in shared/src, or the cold-start metric) with
      exactly the dimensions named (Service, plus the labels the code gives it); one of AWS's own namespaces is in
      AWS_METRICS below; a SEARCH expression's namespace and MetricName are held to the same; and the stack has a
      dashboard;
  (i) the schema registry has exactly one AWS::EventSchemas::Schema per committed vendor event schema
      (shared/schemas/event.<kind>.schema.json), named lever-bridge@<kind>, JSONSchemaDraft4, whose Content is a
      draft 4 JSON Schema of EventBridge's envelope with that kind as detail-type, which the kind's sample
      (tests/events/) in that envelope keeps to (generate_template.py --check holds the content to the committed file);
  (j) every resource of a function's statement is one of the stack's own, of the service of every action of the
      statement: DynamoDB actions the table (its ARN, its stream, one of its indexes), Secrets Manager actions a
      secret of the template or a tenant secret under the SecretPrefix, events:PutEvents a bus of the template,
      SQS actions a queue of the template, S3 actions a bucket of the template or keys in it. The local stack's
      moto matches only SQS and S3 resources (its roles name `*` for the others), so this is where the others
      are held to the stack's own.

Usage: .venv/bin/python infra/check_template.py [--template PATH]
Exits 0 and prints `template: N passed, 0 failed`, or prints one line per problem and exits 1 (2 when the
template cannot be read). Needs cfn-lint (its YAML loader understands !Ref, !GetAtt, !Sub...).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "infra" / "template.yaml"
BIN_DIR = ROOT / "functions" / "src" / "bin"

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
# Actions AWS only accepts with Resource "*".
STAR_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# SAM event types for which SAM attaches an AWS managed policy whose statements have Resource "*".
STAR_POLICY_EVENTS = {"SQS", "Kinesis", "DynamoDB"}
SQS_VISIBILITY_FACTOR = 6
MAX_RECEIVE_COUNT = 10
LAMBDA_DEFAULT_TIMEOUT = 3
# The onboarding API's routes per admin binary, read from the router's own list (shared/src/admin/http.rs:
# ROUTES, and Group::function_name in shared/src/function.rs for the binary of each group).
HTTP_RS = ROOT / "shared" / "src" / "admin" / "http.rs"
# Where the groups are named with their functions (Group::function_name).
FUNCTION_RS = ROOT / "shared" / "src" / "function.rs"


def admin_routes() -> dict[str, set[tuple[str, str]]]:
    text = HTTP_RS.read_text(encoding="utf-8")
    binaries = dict(re.findall(r'Group::(\w+) => "(admin-[\w-]+)"', FUNCTION_RS.read_text(encoding="utf-8")))
    routes: dict[str, set[tuple[str, str]]] = {}
    for method, path, group in re.findall(r'\(\s*"(GET|POST|PUT|DELETE|PATCH)",\s*"(/admin/[^"]*)",\s*(\w+),?\s*\)', text):
        if group not in binaries:
            raise SystemExit(f"check_template: {HTTP_RS}: group {group} has no function name")
        routes.setdefault(binaries[group], set()).add((method, path))
    if not routes:
        raise SystemExit(f"check_template: no ROUTES found in {HTTP_RS}")
    return routes


ADMIN_ROUTES: dict[str, set[tuple[str, str]]] = admin_routes()
PAGES_RS = ROOT / "shared" / "src" / "pages" / "mod.rs"


def page_routes() -> set[tuple[str, str]]:
    text = PAGES_RS.read_text(encoding="utf-8")
    routes = set(re.findall(r'\(\s*"(GET|POST)",\s*"(/connect/[^"]*)",?\s*\)', text))
    if not routes:
        raise SystemExit(f"check_template: no ROUTES found in {PAGES_RS}")
    return routes


PAGE_ROUTES = page_routes()
# Admin routes without IAM auth: Lever redirects the admin's browser here (no SigV4 possible); the
# single-use `state` checked in code protects it.
OPEN_ADMIN_ROUTES = {("GET", "/admin/oauth/callback")}
# The metrics of AWS's namespaces the dashboard and alarms may name.
AWS_METRICS = {
    "AWS/Lambda": {"Errors", "Duration", "Throttles", "Invocations", "IteratorAge", "ConcurrentExecutions"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
    "AWS/ApiGateway": {"4xx", "5xx", "Count", "Latency"},
}
SRC_DIR = ROOT / "shared" / "src"
METRIC_MACRO = re.compile(r'\b(?:counter|gauge|histogram)!\(\s*"(\w+)"([^;]*?)\)\s*\.', re.S)
METRIC_LABEL = re.compile(r'"(\w+)"\s*=>')
COLD_START_METRIC = re.compile(r'lambda_cold_start_metric\(\s*"(\w+)"\s*\)')
SEARCH_SCHEMA = re.compile(r"\{([\w/]+)((?:,\s*\w+)*)\}")
SEARCH_METRIC = re.compile(r'MetricName\s*=\s*"(\w+)"')
# Functions fed by their own SQS queue, besides push-<kind>.
QUEUE_FUNCTIONS = {"transcript-ingest"}
# Functions triggered by a schedule alone, and its expression.
SCHEDULED = {"transcript-flush": "rate(5 minutes)", "sync": "rate(1 minute)"}
SCHEDULE_EVENTS = {"Schedule": "Schedule", "ScheduleV2": "ScheduleExpression"}  # type -> its expression property


class Report:
    """Results per (check, subject): a subject passes a check when no problem was recorded for it."""

    def __init__(self, template_path: Path) -> None:
        self.path = template_path
        self.subjects: dict[tuple[str, str], list[str]] = {}

    def check(self, check: str, subject: str) -> None:
        self.subjects.setdefault((check, subject), [])

    def fail(self, check: str, subject: str, message: str, node: Any = None) -> None:
        where = str(self.path)
        mark = getattr(node, "start_mark", None)
        if mark is not None:
            where += f":{mark.line + 1}"
        self.subjects.setdefault((check, subject), []).append(f"{where}: [{check}] {subject}: {message}")

    def finish(self) -> int:
        problems = [p for ps in self.subjects.values() for p in ps]
        failed = sum(1 for ps in self.subjects.values() if ps)
        passed = len(self.subjects) - failed
        for p in problems:
            print(p, file=sys.stderr)
        print(f"template: {passed} passed, {failed} failed")
        return 1 if failed else 0


def camel(kebab: str) -> str:
    first, *rest = kebab.split("-")
    return first + "".join(w.capitalize() for w in rest)


def pascal(kebab: str) -> str:
    return "".join(w.capitalize() for w in kebab.split("-"))


def target(value: Any) -> str | None:
    """The logical id a `!Ref X` or `!GetAtt X.Attr` points to, else None."""
    if isinstance(value, dict) and len(value) == 1:
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            if isinstance(att, list) and att and isinstance(att[0], str):
                return att[0]
            if isinstance(att, str):
                return att.split(".", 1)[0]
    return None


def referenced(value: Any) -> set[str]:
    """Every logical id (or parameter) a value names through Ref, Fn::GetAtt or Fn::Sub, at any depth."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::GetAtt":
                t = target({k: v})
                if t:
                    out.add(t)
            elif k == "Fn::Sub":
                text, variables = (v, {}) if isinstance(v, str) else (v[0], v[1] if len(v) > 1 else {})
                if isinstance(text, str):
                    for name in re.findall(r"\$\{([^}!][^}]*)\}", text):
                        name = name.split(".", 1)[0]
                        if not isinstance(variables, dict) or name not in variables:
                            out.add(name)
                out |= referenced(variables)
            else:
                out |= referenced(v)
    elif isinstance(value, list):
        for v in value:
            out |= referenced(v)
    return {n for n in out if not n.startswith("AWS::")}


def merged(base: Any, over: Any) -> Any:
    """SAM's Globals semantics: maps merge (the resource's values win), anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merged(base.get(k), v) if k in base else v
        return out
    return over if over is not None else base


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class Template:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.resources: dict[str, Any] = data.get("Resources") or {}
        globals_ = data.get("Globals") or {}
        self.function_globals: dict[str, Any] = globals_.get("Function") or {}

    def of_type(self, type_: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if isinstance(v, dict) and v.get("Type") == type_}

    def type_of(self, logical_id: str | None) -> str | None:
        r = self.resources.get(logical_id) if logical_id else None
        return r.get("Type") if isinstance(r, dict) else None

    def function_props(self, logical_id: str) -> dict[str, Any]:
        props = self.resources[logical_id].get("Properties") or {}
        return merged(self.function_globals, props)

    def function_timeout(self, logical_id: str) -> float:
        t = number(self.function_props(logical_id).get("Timeout"))
        return t if t is not None else LAMBDA_DEFAULT_TIMEOUT

    def authorizer(self, event_props: dict[str, Any]) -> str | None:
        """The authorizer an HttpApi event's route gets: its own Auth.Authorizer, else its API's
        DefaultAuthorizer; None when the route is open."""
        auth = event_props.get("Auth")
        if isinstance(auth, dict) and "Authorizer" in auth:
            name = auth.get("Authorizer")
        else:
            api_id = target(event_props.get("ApiId"))
            api = self.resources.get(api_id) if api_id else None
            api_props = (api.get("Properties") or {}) if isinstance(api, dict) else {}
            if api is None:  # SAM's implicit ServerlessHttpApi takes its settings from Globals
                api_props = (self.data.get("Globals") or {}).get("HttpApi") or {}
            name = (api_props.get("Auth") or {}).get("DefaultAuthorizer")
        if name is None or name == "NONE":
            return None
        return name if isinstance(name, str) else repr(name)

    def parameter_default(self, value: Any) -> Any:
        """A literal, or the default of the parameter a `!Ref` names."""
        ref = value.get("Ref") if isinstance(value, dict) else None
        if isinstance(ref, str):
            return ((self.data.get("Parameters") or {}).get(ref) or {}).get("Default")
        return value


def binary_of(resource: dict[str, Any]) -> Any:
    return ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")


def check_binaries(t: Template, r: Report, binaries: list[str]) -> dict[str, str]:
    """(a) Answers function logical id -> binary for the functions that name an existing one."""
    functions = t.of_type(SERVERLESS_FUNCTION)
    by_binary: dict[str, list[str]] = {}
    named: dict[str, str] = {}
    for fid, res in functions.items():
        r.check("a", fid)
        meta = res.get("Metadata") or {}
        binary = binary_of(res)
        if meta.get("BuildMethod") != "rust-cargolambda":
            r.fail("a", fid, f"Metadata.BuildMethod is {meta.get('BuildMethod')!r}, not 'rust-cargolambda'", res)
        if not isinstance(binary, str):
            r.fail("a", fid, "no Metadata.BuildProperties.Binary naming its binary", res)
            continue
        by_binary.setdefault(binary, []).append(fid)
        if binary not in binaries:
            r.fail("a", fid, f"Binary {binary!r} has no functions/src/bin/{binary}.rs", res)
        else:
            named[fid] = binary
        code_uri = (res.get("Properties") or {}).get("CodeUri", t.function_globals.get("CodeUri"))
        if not isinstance(code_uri, str) or (ROOT / "infra" / code_uri).resolve() != ROOT:
            r.fail("a", fid, f"CodeUri is {code_uri!r}; it must be the workspace root ('..' from infra/)", res)
    for binary in binaries:
        r.check("a", f"bin/{binary}.rs")
        fids = by_binary.get(binary, [])
        if len(fids) != 1:
            found = ", ".join(fids) if fids else "none"
            r.fail("a", f"bin/{binary}.rs", f"needs exactly one {SERVERLESS_FUNCTION} with Binary: {binary} (found {found})")
    return named


def check_webhooks(t: Template, r: Report, named: dict[str, str]) -> None:
    """(b)"""
    routes: dict[tuple[str, str, str], list[str]] = {}
    for fid, res in t.of_type(SERVERLESS_FUNCTION).items():
        events = (res.get("Properties") or {}).get("Events") or {}
        http = {name: ev for name, ev in events.items() if isinstance(ev, dict) and ev.get("Type") == "HttpApi"}
        for name, ev in http.items():
            props = ev.get("Properties") or {}
            api = target(props.get("ApiId")) or "ServerlessHttpApi"
            method = str(props.get("Method", "")).upper()
            path = re.sub(r"\{[^}/]*\}", "{}", str(props.get("Path", "")))
            routes.setdefault((api, method, path), []).append(f"{fid}.{name}")
        if http:
            r.check("b", fid)
            apis = {target((ev.get("Properties") or {}).get("ApiId")) or "ServerlessHttpApi" for ev in http.values()}
            env = (t.function_props(fid).get("Environment") or {}).get("Variables")
            for api in sorted(apis & referenced(env)):
                r.fail("b", fid, f"its Environment names {api}, the API it is routed on: a circular dependency "
                       "(the API's definition names the function); route it on another API or pass the URL "
                       "as a parameter", res)
        binary = named.get(fid)
        if binary and binary.startswith("webhook-"):
            check_webhook(t, r, fid, res, binary, http)
        elif binary and binary.startswith("admin-"):
            check_admin(t, r, fid, res, binary, events, http)
        elif binary == "connect-pages":
            check_pages(t, r, fid, res, events, http)
        elif http:
            r.fail("b", fid, f"has HttpApi events ({', '.join(sorted(http))}) but only webhook-*, admin-* and "
                   "connect-pages functions serve routes", res)
    for (api, method, path), users in routes.items():
        r.check("b", f"route {method} {path}")
        clashes = list(users)
        if method == "ANY":
            clashes += [u for (a, m, p), us in routes.items() if a == api and p == path and m != "ANY" for u in us]
        if len(clashes) > 1:
            r.fail("b", f"route {method} {path}", f"routes collide on {api}: {', '.join(sorted(clashes))}")


def check_webhook(t: Template, r: Report, fid: str, res: dict[str, Any], binary: str, http: dict[str, Any]) -> None:
    """(b) for one webhook-<event> function."""
    event = camel(binary[len("webhook-"):])
    r.check("b", fid)
    if len(http) != 1:
        r.fail("b", fid, f"needs exactly one HttpApi event (found {len(http)})", res)
        return
    (name, ev), = http.items()
    props = ev.get("Properties") or {}
    want = f"/webhooks/{{tenantId}}/{{urlKey}}/{event}"
    if str(props.get("Method", "")).upper() != "POST":
        r.fail("b", fid, f"event {name}: Method is {props.get('Method')!r}, not POST", ev)
    if props.get("Path") != want:
        r.fail("b", fid, f"event {name}: Path is {props.get('Path')!r}, not {want!r} (binary {binary})", ev)
    auth = t.authorizer(props)
    if auth is not None:
        r.fail("b", fid, f"event {name}: the route has authorizer {auth}; webhook routes are open (Lever cannot "
               "sign requests; deliveries are signature-checked in code)", ev)


def check_admin(t: Template, r: Report, fid: str, res: dict[str, Any], binary: str,
                events: dict[str, Any], http: dict[str, Any]) -> None:
    """(b) for one admin-<group> function."""
    r.check("b", fid)
    want = ADMIN_ROUTES.get(binary)
    if want is None:
        r.fail("b", fid, f"no routes are known for {binary}: add them to ADMIN_ROUTES in infra/check_template.py", res)
        want = set()
    for name, ev in events.items():
        if name not in http:
            kind = ev.get("Type") if isinstance(ev, dict) else ev
            r.fail("b", fid, f"event {name} is of Type {kind!r}; admin functions have only HttpApi events", ev)
    found: set[tuple[str, str]] = set()
    for name, ev in http.items():
        props = ev.get("Properties") or {}
        route = (str(props.get("Method", "")).upper(), str(props.get("Path", "")))
        found.add(route)
        if not route[1].startswith("/admin/"):
            r.fail("b", fid, f"event {name}: Path {route[1]!r} is not under /admin/", ev)
        elif route not in want:
            r.fail("b", fid, f"event {name}: {route[0]} {route[1]} is not a route of {binary} (ADMIN_ROUTES)", ev)
        explicit = (props.get("Auth") or {}).get("Authorizer") if isinstance(props.get("Auth"), dict) else None
        if route in OPEN_ADMIN_ROUTES:
            auth = t.authorizer(props)
            if auth is not None:
                r.fail("b", fid, f"event {name}: {route[0]} {route[1]} has authorizer {auth}; it must be open "
                       "(`Auth: Authorizer: NONE`): Lever redirects the admin's browser there", ev)
        elif explicit != "AWS_IAM":
            found_auth = f"Authorizer is {explicit!r}" if explicit is not None else "it has no Auth.Authorizer"
            r.fail("b", fid, f"event {name}: {route[0]} {route[1]} needs `Auth: Authorizer: AWS_IAM` ({found_auth})", ev)
    for method, path in sorted(want - found):
        r.fail("b", fid, f"no HttpApi event for {method} {path} (ADMIN_ROUTES)", res)


def check_pages(t: Template, r: Report, fid: str, res: dict[str, Any],
                events: dict[str, Any], http: dict[str, Any]) -> None:
    """(b) for connect-pages."""
    r.check("b", fid)
    found: set[tuple[str, str]] = set()
    for name, ev in events.items():
        if name not in http:
            r.fail("b", fid, f"event {name} is not an HttpApi event; connect-pages has only its routes", ev)
            continue
        props = ev.get("Properties") or {}
        route = (str(props.get("Method", "")).upper(), str(props.get("Path", "")))
        found.add(route)
        if route not in PAGE_ROUTES:
            r.fail("b", fid, f"event {name}: {route[0]} {route[1]} is not a route of the pages (ROUTES in {PAGES_RS.name})", ev)
        if target(props.get("ApiId")) != "ConnectApi":
            r.fail("b", fid, f"event {name}: the pages are served on ConnectApi", ev)
        auth = t.authorizer(props)
        if auth is not None:
            r.fail("b", fid, f"event {name}: has authorizer {auth}; the pages are opened by a browser (open routes, "
                   "a session checked in code)", ev)
    for method, path in sorted(PAGE_ROUTES - found):
        r.fail("b", fid, f"no HttpApi event for {method} {path} (the pages' ROUTES)", res)


def check_pushes(t: Template, r: Report, named: dict[str, str]) -> None:
    """(c)"""
    mappings = t.of_type("AWS::Lambda::EventSourceMapping")
    queue_users: dict[str, list[str]] = {}
    triggers: dict[str, list[tuple[str, Any, dict[str, Any]]]] = {}
    for fid, res in t.of_type(SERVERLESS_FUNCTION).items():
        events = (res.get("Properties") or {}).get("Events") or {}
        for name, ev in events.items():
            if isinstance(ev, dict) and ev.get("Type") == "SQS":
                props = ev.get("Properties") or {}
                triggers.setdefault(fid, []).append((f"event {name}", ev, props))
                queue_users.setdefault(target(props.get("Queue")) or "?", []).append(fid)
    for mid, m in mappings.items():
        props = m.get("Properties") or {}
        fid = target(props.get("FunctionName"))
        queue = target(props.get("EventSourceArn"))
        if fid in t.resources and t.type_of(queue) == "AWS::SQS::Queue":
            triggers.setdefault(fid, []).append((mid, m, props))
            queue_users.setdefault(queue, []).append(fid)
    for fid, binary in named.items():
        if not (binary.startswith("push-") or binary in QUEUE_FUNCTIONS):
            continue
        r.check("c", fid)
        res = t.resources[fid]
        own = f"{pascal(binary)}Queue"
        found = triggers.get(fid, [])
        if len(found) != 1:
            r.fail("c", fid, f"needs exactly one SQS event source on {own} (found {len(found)})", res)
            continue
        (what, node, props), = found
        queue = target(props.get("Queue", props.get("EventSourceArn")))
        if queue != own:
            r.fail("c", fid, f"{what}: its queue is {queue!r}, not its own {own!r}", node)
            continue
        if "ReportBatchItemFailures" not in as_list(props.get("FunctionResponseTypes")):
            r.fail("c", fid, f"{what}: FunctionResponseTypes lacks ReportBatchItemFailures", node)
        others = sorted(set(queue_users.get(own, [])) - {fid})
        if others:
            r.fail("c", fid, f"{own} also triggers {', '.join(others)}", node)
        qres = t.resources.get(own)
        if t.type_of(own) != "AWS::SQS::Queue":
            r.fail("c", fid, f"{own} is not an AWS::SQS::Queue of the template", node)
            continue
        q = qres.get("Properties") or {}
        if q.get("SqsManagedSseEnabled") is not True and not q.get("KmsMasterKeyId"):
            r.fail("c", fid, f"{own} has no server-side encryption (SqsManagedSseEnabled: true)", qres)
        timeout = t.function_timeout(fid)
        visibility = number(t.parameter_default(q.get("VisibilityTimeout", 30)))
        if visibility is None or visibility < SQS_VISIBILITY_FACTOR * timeout:
            r.fail("c", fid, f"{own} VisibilityTimeout {q.get('VisibilityTimeout', 30)!r} is under "
                   f"{SQS_VISIBILITY_FACTOR} x the function's {timeout:g} s timeout", qres)
        redrive = q.get("RedrivePolicy") or {}
        dlq = target(redrive.get("deadLetterTargetArn"))
        if t.type_of(dlq) != "AWS::SQS::Queue":
            r.fail("c", fid, f"{own} has no RedrivePolicy to a dead-letter queue of the template", qres)
        else:
            if number(redrive.get("maxReceiveCount")) != MAX_RECEIVE_COUNT:
                r.fail("c", fid, f"{own} maxReceiveCount is {redrive.get('maxReceiveCount')!r}, not {MAX_RECEIVE_COUNT}", qres)
            d = t.resources[dlq].get("Properties") or {}
            if d.get("SqsManagedSseEnabled") is not True and not d.get("KmsMasterKeyId"):
                r.fail("c", fid, f"{dlq} has no server-side encryption (SqsManagedSseEnabled: true)", t.resources[dlq])


def statements(node: Any, path: str):
    """Every IAM policy statement anywhere under node, with where it is."""
    if isinstance(node, dict):
        if "Statement" in node and isinstance(node["Statement"], (list, dict)):
            for i, st in enumerate(as_list(node["Statement"])):
                yield f"{path}.Statement[{i}]", st
        for k, v in node.items():
            yield from statements(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from statements(v, f"{path}[{i}]")


def check_iam(t: Template, r: Report) -> None:
    """(d)"""
    for rid, res in t.resources.items():
        if not isinstance(res, dict):
            continue
        r.check("d", rid)
        for where, st in statements(res, rid):
            if not isinstance(st, dict) or st.get("Effect", "Allow") != "Allow":
                continue
            if "NotAction" in st or "NotResource" in st:
                r.fail("d", rid, f"{where}: NotAction/NotResource grant everything else; name the actions and resources", st)
            actions = as_list(st.get("Action"))
            for a in actions:
                if isinstance(a, str) and ("*" in a or "?" in a):
                    r.fail("d", rid, f"{where}: wildcard action {a!r}; name each action", st)
            if "*" in as_list(st.get("Resource")):
                broad = [a for a in actions if a not in STAR_RESOURCE_ACTIONS]
                if broad or not actions:
                    r.fail("d", rid, f"{where}: Resource '*' for {', '.join(map(str, broad)) or 'no named action'}; "
                           f"only {', '.join(sorted(STAR_RESOURCE_ACTIONS))} may have it", st)
        if res.get("Type") != SERVERLESS_FUNCTION:
            continue
        props = res.get("Properties") or {}
        for i, policy in enumerate(as_list(props.get("Policies"))):
            if not (isinstance(policy, dict) and "Statement" in policy):
                shown = policy if isinstance(policy, str) else next(iter(policy), policy) if isinstance(policy, dict) else policy
                r.fail("d", rid, f"Policies[{i}] is {shown!r}: a managed policy or SAM policy template; "
                       "write the statements inline so they can be checked", props.get("Policies"))
        for name, ev in (props.get("Events") or {}).items():
            if isinstance(ev, dict) and ev.get("Type") in STAR_POLICY_EVENTS:
                r.fail("d", rid, f"event {name} (Type {ev.get('Type')}) makes SAM attach a managed policy on Resource '*'; "
                       "use an AWS::Lambda::EventSourceMapping and a statement on the source's ARN", ev)


# The resource type each service's statements may name (check (j)), and the attributes that are its ARNs.
OWN_RESOURCES = {
    "dynamodb": ("AWS::DynamoDB::Table", {"Arn", "StreamArn"}),
    "secretsmanager": ("AWS::SecretsManager::Secret", {None}),
    "events": ("AWS::Events::EventBus", {"Arn"}),
    "sqs": ("AWS::SQS::Queue", {"Arn"}),
    "s3": ("AWS::S3::Bucket", {"Arn"}),
}
TENANT_SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SecretPrefix}"
SUB_OWN = re.compile(r"^\$\{(\w+)\.Arn\}(.*)$")


def own_resource(t: Template, service: str, value: Any) -> str | None:
    """Why `value` is not one of the stack's own resources for `service`'s actions, or None if it is."""
    if service not in OWN_RESOURCES:
        return f"{service} is not a service the functions call"
    kind, attrs = OWN_RESOURCES[service]
    rest, attr, logical = "", None, None
    if isinstance(value, dict) and "Ref" in value:
        logical = value["Ref"]
    elif isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        logical, attr = (att if isinstance(att, list) else str(att).split(".", 1))[:2]
    elif isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        sub = value["Fn::Sub"]
        if service == "secretsmanager" and sub.startswith(TENANT_SECRETS):
            return None  # the part is check (g)'s
        m = SUB_OWN.match(sub)
        if m is None:
            return f"{sub!r} is not an ARN of the stack's own {kind}"
        logical, attr, rest = m.group(1), "Arn", m.group(2)
    else:
        return f"{value!r} is not a resource of the stack (name it with !Ref, !GetAtt or !Sub)"
    if t.type_of(logical) != kind or attr not in attrs:
        return f"{logical}{'.' + attr if attr else ''} is not the ARN of one of the stack's {kind}"
    if service == "dynamodb" and rest:
        indexes = {g.get("IndexName") for g in (t.resources[logical].get("Properties") or {}).get("GlobalSecondaryIndexes") or []}
        if not (rest.startswith("/index/") and rest[len("/index/"):] in indexes):
            return f"{logical}{rest} is not one of the table's indexes ({', '.join(sorted(indexes))})"
    if service == "s3" and rest and not rest.startswith("/"):
        return f"{logical}{rest} is not a key of the bucket"
    if service not in ("dynamodb", "s3") and rest:
        return f"{logical}{rest} is not a {kind}"
    return None


def check_own_resources(t: Template, r: Report, named: dict[str, str]) -> None:
    """(j)"""
    for fid in named:
        r.check("j", fid)
        for where, st in statements(t.resources[fid], fid):
            if not isinstance(st, dict) or st.get("Effect", "Allow") != "Allow":
                continue
            services = {a.split(":", 1)[0] for a in as_list(st.get("Action")) if isinstance(a, str) and ":" in a}
            if services <= {"xray"}:
                continue
            for service in sorted(services):
                for resource in as_list(st.get("Resource")):
                    problem = own_resource(t, service, resource)
                    if problem:
                        r.fail("j", fid, f"{where}: {service} actions on {problem}", st)


def check_log_groups(t: Template, r: Report) -> None:
    """(e)"""
    for fid, res in t.of_type(SERVERLESS_FUNCTION).items():
        r.check("e", fid)
        logging_config = t.function_props(fid).get("LoggingConfig") or {}
        group = target(logging_config.get("LogGroup"))
        if t.type_of(group) != "AWS::Logs::LogGroup":
            r.fail("e", fid, "LoggingConfig.LogGroup must be !Ref an AWS::Logs::LogGroup of the template", res)
            continue
        if (t.resources[group].get("Properties") or {}).get("RetentionInDays") is None:
            r.fail("e", fid, f"log group {group} has no RetentionInDays", t.resources[group])


def check_flush(t: Template, r: Report, named: dict[str, str]) -> None:
    """(f)"""
    mapped = {target((m.get("Properties") or {}).get("FunctionName"))
              for m in t.of_type("AWS::Lambda::EventSourceMapping").values()}
    for fid, binary in named.items():
        if binary not in SCHEDULED:
            continue
        r.check("f", fid)
        res = t.resources[fid]
        events = (res.get("Properties") or {}).get("Events") or {}
        schedules = {n: ev for n, ev in events.items() if isinstance(ev, dict) and ev.get("Type") in SCHEDULE_EVENTS}
        for name, ev in events.items():
            if name not in schedules:
                kind = ev.get("Type") if isinstance(ev, dict) else ev
                r.fail("f", fid, f"event {name} (Type {kind!r}): {binary} is triggered by its schedule only", ev)
        if fid in mapped:
            r.fail("f", fid, f"an AWS::Lambda::EventSourceMapping triggers it; {binary} is triggered by its schedule only", res)
        if len(schedules) != 1:
            r.fail("f", fid, f"needs exactly one schedule event (Type Schedule or ScheduleV2; found {len(schedules)})", res)
            continue
        (name, ev), = schedules.items()
        props = ev.get("Properties") or {}
        expression = props.get(SCHEDULE_EVENTS[ev["Type"]])
        if expression != SCHEDULED[binary]:
            r.fail("f", fid, f"event {name}: {SCHEDULE_EVENTS[ev['Type']]} is {expression!r}, not {SCHEDULED[binary]!r}", ev)
        if props.get("Enabled") is False or str(props.get("State", "ENABLED")).upper() != "ENABLED":
            r.fail("f", fid, f"event {name}: the schedule is disabled", ev)


# Which tenant secrets a binary may reach (shared/src/function.rs, Function::secret_parts).
def secret_parts(binary: str) -> set[str]:
    if binary.startswith("webhook-"):
        return {"webhooks"}
    if binary in ("admin-tenants", "admin-webhooks", "admin-oauth", "connect-pages"):
        return {"webhooks", "lever"}
    if binary == "admin-status":
        return {"webhooks"}
    if binary.startswith("push-") or binary in ("transcript-flush", "sync", "admin-roles", "admin-resolve"):
        return {"lever"}
    return set()


TENANT_SECRET = re.compile(r":secret:\$\{SecretPrefix\}(.*)$")


def check_secrets(t: Template, r: Report, named: dict[str, str]) -> None:
    """(g)"""
    for fid, binary in named.items():
        r.check("g", fid)
        allowed = secret_parts(binary)
        res = t.resources[fid]
        for where, st in statements(res, fid):
            if not isinstance(st, dict):
                continue
            actions = [a for a in as_list(st.get("Action")) if isinstance(a, str) and a.startswith("secretsmanager:")]
            if not actions:
                continue
            for resource in as_list(st.get("Resource")):
                sub = resource.get("Fn::Sub") if isinstance(resource, dict) else None
                m = TENANT_SECRET.search(sub) if isinstance(sub, str) else None
                if m is None:
                    continue
                part = re.fullmatch(r"\*/(webhooks|lever)-(\?{6}|\*)", m.group(1))
                if part is None:
                    r.fail("g", fid, f"{where}: {sub!r} names tenant secrets without their part (*/webhooks-?????? or "
                           "*/lever-??????)", st)
                elif part.group(1) not in allowed:
                    r.fail("g", fid, f"{where}: {binary} may not reach the tenants' {part.group(1)} secrets", st)
                elif binary.startswith("webhook-") and actions != ["secretsmanager:GetSecretValue"]:
                    r.fail("g", fid, f"{where}: a webhook function only reads its tokens ({', '.join(actions)})", st)


def emitted_metrics() -> dict[str, set[frozenset[str]]]:
    """Each LeverBridge metric the code emits, with each set of dimensions it is emitted with."""
    out: dict[str, set[frozenset[str]]] = {}
    for path in SRC_DIR.rglob("*.rs"):
        text = path.read_text(encoding="utf-8")
        for m in METRIC_MACRO.finditer(text):
            labels = frozenset(METRIC_LABEL.findall(m.group(2)))
            out.setdefault(m.group(1), set()).add(frozenset({"Service"}) | labels)
        for m in COLD_START_METRIC.finditer(text):
            out.setdefault(m.group(1), set()).add(frozenset({"Service"}))
    return out


def check_metric(r: Report, subject: str, emitted: dict[str, set[frozenset[str]]], namespace: Any,
                 name: Any, dims: set[str] | None, node: Any) -> None:
    if namespace == "LeverBridge":
        if name not in emitted:
            r.fail("h", subject, f"names metric LeverBridge/{name}, which no code in shared/src emits", node)
        elif dims is not None and frozenset(dims) not in emitted[name]:
            have = " or ".join(sorted("{" + ", ".join(sorted(d)) + "}" for d in emitted[name]))
            r.fail("h", subject, f"names LeverBridge/{name} with dimensions {{{', '.join(sorted(dims))}}}; "
                   f"the code emits it with {have}", node)
    elif namespace in AWS_METRICS:
        if name not in AWS_METRICS[namespace]:
            r.fail("h", subject, f"names {namespace}/{name}, not a metric of AWS_METRICS", node)
    else:
        r.fail("h", subject, f"names metric {name} in namespace {namespace!r}, neither LeverBridge nor AWS's", node)


def check_metrics(t: Template, r: Report) -> None:
    """(h)"""
    emitted = emitted_metrics()
    dashboards = t.of_type("AWS::CloudWatch::Dashboard")
    r.check("h", "dashboard")
    if not dashboards:
        r.fail("h", "dashboard", "the stack has no AWS::CloudWatch::Dashboard")
    for did, res in dashboards.items():
        r.check("h", did)
        body = (res.get("Properties") or {}).get("DashboardBody")
        if isinstance(body, dict) and "Fn::Sub" in body:
            body = body["Fn::Sub"]
        try:
            widgets = json.loads(str(body))["widgets"]
        except (ValueError, KeyError, TypeError) as e:
            r.fail("h", did, f"DashboardBody is not a dashboard's JSON: {e}", res)
            continue
        for w in widgets:
            props = w.get("properties") or {}
            title = props.get("title", "?")
            for row in props.get("metrics") or []:
                if row and isinstance(row[0], dict) and "expression" in row[0]:
                    expr = row[0]["expression"]
                    schemas = SEARCH_SCHEMA.findall(expr)
                    names = SEARCH_METRIC.findall(expr)
                    if not schemas or not names:
                        r.fail("h", did, f"widget {title!r}: expression {expr!r} names no namespace and MetricName", res)
                    for ns, dims in schemas:
                        for n in names:
                            dset = {d.strip() for d in dims.split(",") if d.strip()}
                            check_metric(r, did, emitted, ns, n, dset, res)
                    continue
                fields = [x for x in row if not isinstance(x, dict)]
                if len(fields) < 2 or len(fields) % 2:
                    r.fail("h", did, f"widget {title!r}: metric row {row!r} is not [namespace, name, dim, value...]", res)
                    continue
                check_metric(r, did, emitted, fields[0], fields[1], set(fields[2::2]), res)
    for aid, res in t.of_type("AWS::CloudWatch::Alarm").items():
        props = res.get("Properties") or {}
        if "MetricName" not in props:
            continue
        r.check("h", aid)
        dims = {d.get("Name") for d in props.get("Dimensions") or [] if isinstance(d, dict)}
        check_metric(r, aid, emitted, props.get("Namespace"), props.get("MetricName"), dims, res)


def check_schemas(t: Template, r: Report) -> None:
    """(i)"""
    kinds = sorted(p.name[len("event."):-len(".schema.json")] for p in (ROOT / "shared" / "schemas").glob("event.*.schema.json"))
    r.check("i", "registry")
    if not t.of_type("AWS::EventSchemas::Registry"):
        r.fail("i", "registry", "the stack has no AWS::EventSchemas::Registry")
    seen: dict[str, str] = {}
    for sid, res in t.of_type("AWS::EventSchemas::Schema").items():
        r.check("i", sid)
        props = res.get("Properties") or {}
        name = str(props.get("SchemaName", ""))
        kind = name.removeprefix("lever-bridge@")
        if name == kind or kind not in kinds:
            r.fail("i", sid, f"SchemaName {name!r} is not lever-bridge@<a kind of shared/schemas/>", res)
            continue
        if kind in seen:
            r.fail("i", sid, f"a second schema for {kind} (the first: {seen[kind]})", res)
        seen[kind] = sid
        if props.get("Type") != "JSONSchemaDraft4":
            r.fail("i", sid, f"Type is {props.get('Type')!r}, not JSONSchemaDraft4", res)
        try:
            content = json.loads(str(props.get("Content")))
        except ValueError as e:
            r.fail("i", sid, f"Content is not JSON: {e}", res)
            continue
        if content.get("$schema") != "http://json-schema.org/draft-04/schema#":
            r.fail("i", sid, "Content is not a draft 4 schema", res)
        if content.get("properties", {}).get("detail-type", {}).get("enum") != [kind]:
            r.fail("i", sid, f"Content's detail-type is not {kind}", res)
        # The sample of the kind, as EventBridge delivers it, keeps to the converted schema.
        sample_path = ROOT / "tests" / "events" / f"event.{kind}.json"
        if sample_path.exists():
            from jsonschema import Draft4Validator  # cfn-lint's dependency

            envelope = {"version": "0", "id": "0", "detail-type": kind, "source": "lever-bridge", "account": "0",
                        "time": "2026-12-04T00:00:00Z", "region": "us-east-1", "resources": [],
                        "detail": json.loads(sample_path.read_text())}
            for err in Draft4Validator(content).iter_errors(envelope):
                r.fail("i", sid, f"tests/events/event.{kind}.json breaks it: {err.message}", res)
    for kind in kinds:
        if kind not in seen:
            r.fail("i", "registry", f"no schema for shared/schemas/event.{kind}.schema.json (run `make template`)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="default: infra/template.yaml")
    args = parser.parse_args(argv)
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        print("check_template: needs cfn-lint's YAML loader: .venv/bin/pip install cfn-lint", file=sys.stderr)
        return 2
    try:
        data = cfn_yaml.load(str(args.template))
    except Exception as e:  # the loader raises several kinds (missing file, YAML syntax, bad tags)
        print(f"{args.template}: cannot be read as a CloudFormation template: {e}", file=sys.stderr)
        return 2
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        print(f"{args.template}: no Resources section", file=sys.stderr)
        return 2
    binaries = sorted(p.stem for p in BIN_DIR.glob("*.rs"))
    if not binaries:
        print(f"check_template: no binaries in {BIN_DIR}", file=sys.stderr)
        return 2
    t = Template(data)
    r = Report(args.template)
    named = check_binaries(t, r, binaries)
    check_webhooks(t, r, named)
    check_pushes(t, r, named)
    check_iam(t, r)
    check_log_groups(t, r)
    check_flush(t, r, named)
    check_secrets(t, r, named)
    check_metrics(t, r)
    check_schemas(t, r)
    check_own_resources(t, r, named)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
