#!/usr/bin/env python3
"""Structural checks of infra/template.yaml against the code: what cfn-lint cannot know.

  (a) every binary in functions/src/bin/*.rs has exactly one AWS::Serverless::Function whose
      Metadata.BuildProperties.Binary names it (rust-cargolambda, CodeUri the workspace root), and every
      function names an existing binary;
  (b) every webhook-<event> function has exactly one HttpApi event, POST /webhooks/{tenantId}/<event> with
      <event> the binary's name in camel case (webhook-candidate-stage-change: candidateStageChange),
      and no two routes of the template collide;
  (c) every push-<kind> function is triggered by exactly one SQS event source (a SAM `Type: SQS` event or an
      AWS::Lambda::EventSourceMapping) on its own queue (<PushKind>Queue, used by no other function), with
      ReportBatchItemFailures; that queue has SSE, a dead-letter queue (maxReceiveCount 10, SSE) and a
      visibility timeout of at least 6x the function's timeout;
  (d) no IAM statement has an Action (or NotAction) that is `*` or a wildcard such as `sqs:*`, nor a Resource
      `*` unless every action of the statement is one AWS requires it for (X-Ray); function policies are
      inline statements (a managed policy or SAM policy template could not be checked here), and no SAM
      event attaches a managed policy on every resource (SAM `Type: SQS`, Kinesis, DynamoDB events do);
  (e) every function has its own log group (LoggingConfig.LogGroup: !Ref an AWS::Logs::LogGroup) with
      RetentionInDays.

Usage: .venv/bin/python infra/check_template.py [--template PATH]
Exits 0 and prints `template: N passed, 0 failed`, or prints one line per problem and exits 1 (2 when the
template cannot be read). Needs cfn-lint (its YAML loader understands !Ref, !GetAtt, !Sub...).
"""

from __future__ import annotations

import argparse
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
        binary = named.get(fid)
        if not binary or not binary.startswith("webhook-"):
            continue
        event = camel(binary[len("webhook-"):])
        r.check("b", fid)
        if len(http) != 1:
            r.fail("b", fid, f"needs exactly one HttpApi event (found {len(http)})", res)
            continue
        (name, ev), = http.items()
        props = ev.get("Properties") or {}
        want = f"/webhooks/{{tenantId}}/{event}"
        if str(props.get("Method", "")).upper() != "POST":
            r.fail("b", fid, f"event {name}: Method is {props.get('Method')!r}, not POST", ev)
        if props.get("Path") != want:
            r.fail("b", fid, f"event {name}: Path is {props.get('Path')!r}, not {want!r} (binary {binary})", ev)
    for (api, method, path), users in routes.items():
        r.check("b", f"route {method} {path}")
        clashes = list(users)
        if method == "ANY":
            clashes += [u for (a, m, p), us in routes.items() if a == api and p == path and m != "ANY" for u in us]
        if len(clashes) > 1:
            r.fail("b", f"route {method} {path}", f"routes collide on {api}: {', '.join(sorted(clashes))}")


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
        if not binary.startswith("push-"):
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
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
