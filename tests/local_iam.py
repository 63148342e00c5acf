"""Each function's role, made in moto from the template, and IAM enforced: the local stack's functions then
run as deployed ones do, with their own role's credentials, and a call their role does not allow fails.

For every function of the functions file (infra/template_env.py's output, whose `policies` are the
template's inline policies with resources as moto can match them) this makes an IAM role
`<stack>-<binary>`, trusted by Lambda, with the statements as its inline policy `policy` (the name the
tests use to edit it), assumes it (before enforcement: moto cannot assume a role trusted only by a service
once it enforces), and writes the credentials to the roles file, which `lever-bridge-dev exec-function`
gives each function as Lambda gives it its role's: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN. Then it switches moto's enforcement on (`POST /moto-api/reset-auth` with `0`); the
stack's own tools and tests keep working as moto's allow-all user `local` (tests/moto_server.py).

Usage: .venv/bin/python tests/local_iam.py --functions .stack/functions-test.json --out .stack/roles-test.json
(AWS_ENDPOINT_URL, STACK_NAME and the `local` credentials from the environment, as the stack sets them).
After the tests, `--check-denials FILE` (the refusals moto recorded, MOTO_DENIALS) fails on any refusal of an
action the template does not grant: a call the deployed function's role would refuse too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import boto3

POLICY_NAME = "policy"
TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})


def check_denials(denials: Path, functions: dict, stack: str) -> int:
    """Every refusal moto recorded (MOTO_DENIALS) must be of an action the template grants the function: one
    a test took away from its role. A refusal of any other action is a call the function makes that its
    deployed role would refuse too."""
    lines = denials.read_text().splitlines() if denials.exists() else []
    missing: Counter = Counter()
    for line in lines:
        d = json.loads(line)
        role = d["principal"].split(":assumed-role/", 1)[-1].split("/", 1)[0]
        binary = role[len(stack) + 1:] if role.startswith(f"{stack}-") else None
        granted = {a for st in (functions.get(binary) or {}).get("policies", []) for a in st["Action"]}
        if binary not in functions or d["action"] not in granted:
            missing[(binary or d["principal"], d["action"])] += 1
    for (who, action), n in sorted(missing.items()):
        print(f"IAM: {who} called {action} ({n}x), which its role in infra/template.yaml does not grant", file=sys.stderr)
    print(f"IAM: {len(lines)} refusals, {sum(missing.values())} of an action the template does not grant")
    return 1 if missing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--functions", type=Path, required=True)
    parser.add_argument("--out", type=Path, help="the roles file to write")
    parser.add_argument("--check-denials", type=Path, metavar="FILE",
                        help="instead: check the refusals moto recorded (MOTO_DENIALS) against the template")
    enforce = parser.add_mutually_exclusive_group()
    enforce.add_argument("--enforce", dest="enforce", action="store_true", default=True, help="(the default)")
    enforce.add_argument("--no-enforce", dest="enforce", action="store_false", help="make the roles, leave moto open")
    args = parser.parse_args()
    stack = os.environ["STACK_NAME"]
    if args.check_denials:
        return check_denials(args.check_denials, json.loads(args.functions.read_text())["functions"], stack)
    if not args.out:
        parser.error("--out is required")
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region)
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region)
    functions = json.loads(args.functions.read_text())["functions"]
    roles = {}
    for binary, spec in sorted(functions.items()):
        name = f"{stack}-{binary}"
        if len(name) > 64:
            print(f"local_iam: role name {name} is longer than IAM's 64 characters", file=sys.stderr)
            return 2
        try:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        document = {"Version": "2012-10-17", "Statement": spec["policies"]}
        iam.put_role_policy(RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=binary, DurationSeconds=43200)["Credentials"]
        roles[binary] = {
            "role": name,
            "policy": POLICY_NAME,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }
    args.out.write_text(json.dumps(roles, indent=2, sort_keys=True) + "\n")
    if args.enforce:
        # Not form-encoded: moto reads the raw body.
        req = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(req) as r:
            r.read()
    print(f"{len(roles)} roles, one per function; IAM {'' if args.enforce else 'not '}enforced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
