#!/usr/bin/env python3
"""What each function gets when deployed, read from infra/template.yaml, with local values for the template's
parameters and resources: its environment and the HTTP API routes it is served on.

The environment is what Lambda gives the function: `Globals.Function.Environment.Variables` merged with the
function's own `Environment.Variables`, and its `LoggingConfig` as Lambda passes it on (`AWS_LAMBDA_LOG_LEVEL`
from ApplicationLogLevel, `AWS_LAMBDA_LOG_FORMAT` from LogFormat). The local stack runs every function under
`cargo lambda watch` with exactly that (plus what Lambda itself sets: the runtime API, the region, credentials),
routes requests to the functions by these routes, and the tests load every function's configuration from it.

Intrinsic functions resolve against the local values: `Ref` of a parameter (a local value, else the template's
default), of a pseudo parameter (`AWS::StackName`, `AWS::Region`...) or of a resource (a local value: the
local stack must name one for every resource a function's environment refers to, or this fails naming it);
`Fn::GetAtt X.Attr` (a local value for `X.Attr`); `Fn::Sub` (each `${...}` the same way; an API's URL,
`https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}`, becomes that API's local URL).

Usage:
  python infra/template_env.py --stack-name lever-bridge-dev --region us-east-1 \\
      --param SecretPrefix=lever-bridge-dev/tenants/ --resource Table=lever-bridge-dev \\
      --api HttpApi=http://127.0.0.1:9001 --out .stack/functions-dev.json

Each function's `Policies` are written as the local stack makes its role in moto (tests/local_iam.py):
every statement with its actions, its SQS and S3 resources as their local ARNs (moto matches those) and
every other resource as `"*"` (moto authorises DynamoDB, Secrets Manager and EventBridge calls against the
resource `"*"`, so an ARN there would never match; infra/check_template.py checks those ARNs instead).

Writes `{"functions": {"<binary>": {"environment": {...}, "routes": [{"api", "method", "path"}],
"policies": [{"Effect", "Action": [...], "Resource": [...]}]}},
"apis": {"<api>": "<local url>"}, "mappings": [{"function", "source", "batchSize", "filters", ...}],
"tables": {"<logical id>": {"attributes", "keys", "indexes", "stream", "ttl"}}}`. Needs cfn-lint's YAML loader (in the local stack's .venv through moto).
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
API_URL = re.compile(r"^https://\$\{(\w+)\}\.execute-api\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}(.*)$")
PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")


class Unresolved(Exception):
    pass


class Resolver:
    def __init__(self, template: dict, local: dict):
        self.params = template.get("Parameters") or {}
        self.resources = template.get("Resources") or {}
        self.local = local

    def name(self, ref: str) -> str:
        pseudo = self.local["pseudo"]
        if ref in pseudo:
            return pseudo[ref]
        if ref in self.params:
            if ref in self.local["parameters"]:
                return self.local["parameters"][ref]
            if "Default" in self.params[ref]:
                return scalar(self.params[ref]["Default"])
            raise Unresolved(f"parameter {ref} has no default and no local value (--param {ref}=...)")
        if ref in self.local["resources"]:
            return self.local["resources"][ref]
        if ref in self.resources or "." in ref:
            raise Unresolved(f"no local value for {ref} (--resource {ref}=...)")
        raise Unresolved(f"{ref} is neither a parameter, a pseudo parameter nor a resource")

    def value(self, v: Any) -> str:
        if isinstance(v, dict) and len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                return self.name(arg)
            if fn == "Fn::GetAtt":
                return self.name(".".join(arg) if isinstance(arg, list) else arg)
            if fn == "Fn::Sub":
                if not isinstance(arg, str):
                    raise Unresolved("Fn::Sub with a variable map is not supported locally")
                api = API_URL.match(arg)
                if api:
                    if api.group(1) not in self.local["apis"]:
                        raise Unresolved(f"no local URL for the API {api.group(1)} (--api {api.group(1)}=...)")
                    return self.local["apis"][api.group(1)] + self.sub(api.group(2))
                return self.sub(arg)
            raise Unresolved(f"{fn} is not supported in a function's environment locally")
        return scalar(v)

    def sub(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.name(m.group(1)), text)


def scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    raise Unresolved(f"{v!r} is not a value an environment variable can hold")


def functions(template: dict, resolver: Resolver) -> dict[str, dict]:
    glob = (template.get("Globals") or {}).get("Function") or {}
    out: dict[str, dict] = {}
    for logical, res in (template.get("Resources") or {}).items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if not binary:
            raise Unresolved(f"{logical} names no binary (Metadata.BuildProperties.Binary)")
        props = res.get("Properties") or {}
        variables = dict(((glob.get("Environment") or {}).get("Variables") or {}))
        variables.update(((props.get("Environment") or {}).get("Variables") or {}))
        logging = dict(glob.get("LoggingConfig") or {})
        logging.update(props.get("LoggingConfig") or {})
        env: dict[str, str] = {}
        for key, value in variables.items():
            try:
                env[key] = resolver.value(value)
            except Unresolved as e:
                raise Unresolved(f"{binary}: {key}: {e}") from None
        if logging.get("LogFormat") == "JSON":
            env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            if "ApplicationLogLevel" in logging:
                env["AWS_LAMBDA_LOG_LEVEL"] = resolver.value(logging["ApplicationLogLevel"])
        routes = []
        for event in (props.get("Events") or {}).values():
            if isinstance(event, dict) and event.get("Type") == "HttpApi":
                p = event.get("Properties") or {}
                api = p.get("ApiId")
                api = api.get("Ref") if isinstance(api, dict) else "ServerlessHttpApi"
                routes.append({"api": api, "method": p.get("Method", "ANY").upper(), "path": p.get("Path", "/")})
        try:
            statements = policies(props.get("Policies") or [], resolver)
        except Unresolved as e:
            raise Unresolved(f"{binary}: Policies: {e}") from None
        out[binary] = {"environment": dict(sorted(env.items())), "routes": routes, "policies": statements}
    return out


# The resources moto matches a statement's ARN against; it sees every other service's as "*".
ARN_MATCHED = {"AWS::SQS::Queue", "AWS::S3::Bucket"}
RESOURCE_TYPES = ARN_MATCHED | {"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::Events::EventBus"}
SUB_ARN = re.compile(r"^\$\{(\w+)\.Arn\}")
LITERAL_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:(\w+):")


def policies(documents: list, resolver: Resolver) -> list[dict]:
    """The function's inline policies' statements, resources as moto can match them (see above)."""
    out = []
    for doc in documents:
        if not isinstance(doc, dict) or "Statement" not in doc:
            raise Unresolved(f"{doc!r} is not an inline policy document (SAM policy templates are not expanded locally)")
        for st in doc["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            local = sorted({policy_resource(r, resolver) for r in resources})
            out.append({"Effect": st["Effect"], "Action": actions, "Resource": local})
    return out


def policy_resource(v: Any, resolver: Resolver) -> str:
    if v == "*":
        return "*"
    logical, attr, rest = None, None, ""
    if isinstance(v, dict) and len(v) == 1:
        (fn, arg), = v.items()
        if fn == "Ref":
            logical = arg
        elif fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        elif fn == "Fn::Sub" and isinstance(arg, str):
            m = SUB_ARN.match(arg)
            if m:
                logical, attr, rest = m.group(1), "Arn", resolver.sub(arg[m.end():])
            elif (literal := LITERAL_ARN.match(arg)) and literal.group(1) not in ("sqs", "s3"):
                return "*"
    kind = (resolver.resources.get(logical) or {}).get("Type") if logical else None
    if kind not in RESOURCE_TYPES:
        raise Unresolved(f"{v!r} is not a resource the local stack can name")
    if kind not in ARN_MATCHED:
        return "*"
    if attr not in (None, "Arn"):
        raise Unresolved(f"{v!r}: {logical}.{attr} is not an ARN")
    region, account = resolver.name("AWS::Region"), resolver.name("AWS::AccountId")
    try:
        name = resolver.name(logical)
    except Unresolved:
        # A queue the local stack does not make: its ARN names it, so that no call matches.
        name = f"{resolver.name('AWS::StackName')}-{logical}"
    if kind == "AWS::SQS::Queue":
        return f"arn:aws:sqs:{region}:{account}:{name.rsplit('/', 1)[-1]}{rest}"
    return f"arn:aws:s3:::{name}{rest}"


def mappings(template: dict) -> list[dict]:
    """The event source mappings, as the local stack runs them: the function (its binary), the source
    (`Logical.Attr`), the batch size, the filter patterns and how failures are handled."""
    resources = template.get("Resources") or {}
    binaries = {
        logical: ((r.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        for logical, r in resources.items()
        if isinstance(r, dict) and r.get("Type") == "AWS::Serverless::Function"
    }
    out = []
    for logical, r in resources.items():
        if not isinstance(r, dict) or r.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        p = r.get("Properties") or {}
        fn = p.get("FunctionName")
        fn = fn.get("Ref") if isinstance(fn, dict) else fn
        src = p.get("EventSourceArn")
        att = src.get("Fn::GetAtt") if isinstance(src, dict) else None
        source = ".".join(att) if isinstance(att, list) else str(att or src)
        filters = [json.loads(f["Pattern"]) for f in ((p.get("FilterCriteria") or {}).get("Filters") or [])]
        out.append({
            "name": logical,
            "function": binaries.get(fn),
            "source": source,
            "batchSize": int(p.get("BatchSize", 100)),
            "filters": filters,
            "reportBatchItemFailures": "ReportBatchItemFailures" in (p.get("FunctionResponseTypes") or []),
            "bisectOnError": bool(p.get("BisectBatchOnFunctionError", False)),
            "maximumRetryAttempts": int(p.get("MaximumRetryAttempts", -1)),
        })
    return out


def tables(template: dict) -> dict[str, dict]:
    """Each DynamoDB table's shape (keys, indexes, stream, TTL), which the local stack's table must match."""
    out = {}
    for logical, r in (template.get("Resources") or {}).items():
        if not isinstance(r, dict) or r.get("Type") != "AWS::DynamoDB::Table":
            continue
        p = r.get("Properties") or {}
        keys = lambda schema: [[k["AttributeName"], k["KeyType"]] for k in schema]  # noqa: E731
        out[logical] = {
            "attributes": sorted([a["AttributeName"], a["AttributeType"]] for a in p.get("AttributeDefinitions") or []),
            "keys": keys(p.get("KeySchema") or []),
            "indexes": {
                g["IndexName"]: {
                    "keys": keys(g["KeySchema"]),
                    "projection": g["Projection"]["ProjectionType"],
                    "nonKeyAttributes": sorted(g["Projection"].get("NonKeyAttributes") or []),
                }
                for g in p.get("GlobalSecondaryIndexes") or []
            },
            "stream": (p.get("StreamSpecification") or {}).get("StreamViewType"),
            "ttl": (p.get("TimeToLiveSpecification") or {}).get("AttributeName"),
        }
    return out


def pairs(values: list[str], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise SystemExit(f"{flag} takes NAME=VALUE, not {v!r}")
        k, _, val = v.partition("=")
        out[k] = val
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--param", action="append", default=[], help="a parameter's local value: NAME=VALUE")
    parser.add_argument("--resource", action="append", default=[], help="a resource's local value: LOGICALID[.Attr]=VALUE")
    parser.add_argument("--api", action="append", default=[], help="an HTTP API's local URL: LOGICALID=URL")
    parser.add_argument("--out", type=Path, help="default: stdout")
    args = parser.parse_args(argv)
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(args.template))
    apis = {k: v.rstrip("/") for k, v in pairs(args.api, "--api").items()}
    local = {
        "pseudo": {
            "AWS::StackName": args.stack_name,
            "AWS::Region": args.region,
            # moto's account: the local ARNs are the ones it gives.
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
        "parameters": pairs(args.param, "--param"),
        "resources": pairs(args.resource, "--resource"),
        "apis": apis,
    }
    unknown = set(local["parameters"]) - set(template.get("Parameters") or {})
    if unknown:
        print(f"template_env: the template has no parameter {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    try:
        result = {
            "functions": functions(template, Resolver(template, local)),
            "apis": apis,
            "mappings": mappings(template),
            "tables": tables(template),
        }
    except Unresolved as e:
        print(f"template_env: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
