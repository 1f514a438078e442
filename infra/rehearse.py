"""Deploy rehearsal: infra/template.yaml, less its functions, created by LocalStack's CloudFormation.

Run by infra/rehearse.sh with the Python of LocalStack's pinned venv ($FMN_LOCAL_DIR/venv-localstack:
aws-sam-translator 1.115.0, the SAM translator LocalStack itself uses, and boto3). Steps:

1. translate the SAM template to plain CloudFormation, offline (samtranslator, as `sam deploy`
   has CloudFormation do);
2. leave out what LocalStack community cannot run or create (see DROPPED_TYPES, drop_resources):
   the functions and what exists only for them; every reference to them is removed or, where
   CloudFormation would resolve it to a name the template fixes, replaced by that name;
3. create the stack under a unique name and resource prefix, printing its events, and on
   failure each failed resource's reason;
4. check every created resource against the template (queue attributes and redrive, table keys
   and TTL, topics and the subscription, the queue policy, roles and their policies, the
   bridge's policy, alarms and their dimensions, the schedule rule, the outputs);
5. delete the stack (always, also after a failure) and check that nothing is left.

Exit status 0 only if all of it passed. `--transform-only` does steps 1-2 and prints the result.
"""

import argparse
import copy
import json
import os
import re
import secrets
import signal
import sys
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(REPO, "infra", "template.yaml")

# Resource types left out of the rehearsal, and why.
DROPPED_TYPES = {
    # LocalStack community runs Lambda functions in Docker containers only; there is no Docker
    # engine here. The real bootstraps are tested under cargo lambda's emulator instead
    # (tests/tests/lambda_binaries.rs).
    "AWS::Lambda::Function": "a Lambda function (LocalStack community runs functions in Docker only)",
    # These exist only for a function: its SQS triggers, invoke permissions, its URL.
    "AWS::Lambda::EventSourceMapping": "a function's SQS trigger",
    "AWS::Lambda::Permission": "a permission to invoke a function",
    "AWS::Lambda::Url": "a function's URL",
    # SAM's HttpApi event: an API whose only integration is the web-api function (and LocalStack
    # community has no API Gateway v2 anyway).
    "AWS::ApiGatewayV2::Api": "the web-api function's HTTP API (SAM HttpApi event)",
    "AWS::ApiGatewayV2::Stage": "the stage of that HTTP API",
    # LocalStack 4.6.0 community has no CloudFormation resource provider for SES configuration
    # sets (services/ses/resource_providers has AWS::SES::EmailIdentity only); with
    # CFN_IGNORE_UNSUPPORTED_RESOURCE_TYPES=0 (localstack/_lib.sh) they would fail the stack,
    # with its default they would be skipped yet reported as created.
    "AWS::SES::ConfigurationSet": "no CloudFormation provider in LocalStack community 4.6.0",
    "AWS::SES::ConfigurationSetEventDestination": "no CloudFormation provider in LocalStack community 4.6.0",
}

# What `Ref` of a dropped resource returns on AWS, where the template fixes it: a function's Ref
# is its name (FunctionName), a configuration set's its Name. References to these are replaced
# by that value, so what names them (the MatchErrorsAlarm's FunctionName dimension, the roles'
# ses:SendEmail statements on configuration-set/<name>) is created and checked as on AWS.
REF_NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SES::ConfigurationSet": "Name",
}

PSEUDO = ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::StackId", "AWS::URLSuffix")


class RehearsalError(Exception):
    pass


def say(msg):
    print(f"==> {msg}", flush=True)


def info(msg):
    print(f"    {msg}", flush=True)


# ------------------------------------------------------------------ template: read and translate

class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt ...) as their long forms."""


def _short_form(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


class _NoManagedPolicyLookups:
    """samtranslator asks this for AWS managed policies named without an ARN; the template names
    none, so any lookup is a template change this script must learn about (offline: no IAM)."""

    def load(self):
        raise RehearsalError("the SAM translator wanted to look up AWS managed policies by name (offline: name them by ARN)")


def translate(region):
    """The SAM template as plain CloudFormation (a dict), translated offline."""
    from samtranslator.translator.transform import transform

    with open(TEMPLATE) as f:
        template = yaml.load(f, Loader=_CfnLoader)
    # CodeUri is the workspace (`sam build` packages it, `sam deploy` uploads the zip and puts its
    # s3:// URI here); the translator wants such a URI. The functions are dropped below, so a
    # placeholder URI that is never read is enough.
    for logical_id, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = f"s3://fmn-rehearsal-not-uploaded/{logical_id}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # the translator builds ARNs for it
    try:
        return transform(template, {}, _NoManagedPolicyLookups())
    except RehearsalError:
        raise
    except Exception as e:  # samtranslator's InvalidDocumentException lists every error
        raise RehearsalError(f"SAM translation of {TEMPLATE} failed: {e}") from e


# ------------------------------------------------------------------ template: leave out

def _refs(value):
    """Every resource or parameter name a value references: Ref, Fn::GetAtt, ${X} in Fn::Sub."""
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".", 1)[0])
            elif k == "Fn::Sub":
                text, variables = (v, {}) if isinstance(v, str) else (v[0], v[1])
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    name = name.split(".", 1)[0]
                    if name not in variables:
                        found.add(name)
                found |= _refs(variables)
            else:
                found |= _refs(v)
    elif isinstance(value, list):
        for v in value:
            found |= _refs(v)
    return found


def _name_value(resource):
    """The value Ref returns for a dropped resource whose name the template fixes, or None."""
    prop = REF_NAME_PROPERTY.get(resource["Type"])
    return resource.get("Properties", {}).get(prop) if prop else None


def _replace_refs(value, names):
    """value with Ref X and ${X} (X in names: logical id -> its fixed name) replaced by the name."""
    if isinstance(value, list):
        return [_replace_refs(v, names) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"} and value["Ref"] in names:
        return copy.deepcopy(names[value["Ref"]])
    if set(value) == {"Fn::Sub"}:
        sub = value["Fn::Sub"]
        text, variables = (sub, None) if isinstance(sub, str) else (sub[0], sub[1])

        def inline(m):
            name = m.group(1)
            if name not in names or (variables and name in variables):
                return m.group(0)
            fixed = names[name]
            # A fixed name is a literal or a plain Fn::Sub string: either can be inlined.
            if isinstance(fixed, str):
                return fixed
            if isinstance(fixed, dict) and isinstance(fixed.get("Fn::Sub"), str):
                return fixed["Fn::Sub"]
            raise RehearsalError(f"cannot inline the name of {name} ({fixed}) into Fn::Sub {text!r}")

        text = re.sub(r"\$\{([^!}.][^}.]*)\}", inline, text)
        return {"Fn::Sub": text if variables is None else [text, _replace_refs(variables, names)]}
    return {k: _replace_refs(v, names) for k, v in value.items()}


def drop_resources(template):
    """Leaves out DROPPED_TYPES and every reference to them. Returns (template, dropped), dropped
    being [(logical id, type, why)]; fails on a reference it does not know how to handle, so a
    template change that adds one is noticed here, not papered over."""
    t = copy.deepcopy(template)
    resources = t["Resources"]
    dropped = {lid: res for lid, res in resources.items() if res["Type"] in DROPPED_TYPES}
    for lid in dropped:
        del resources[lid]
    names = {lid: v for lid, res in dropped.items() if (v := _name_value(res)) is not None}

    for lid, res in resources.items():
        # DependsOn on a dropped resource: the dependency is gone with it.
        deps = res.get("DependsOn")
        if deps is not None:
            deps = [deps] if isinstance(deps, str) else deps
            deps = [d for d in deps if d not in dropped]
            if deps:
                res["DependsOn"] = deps
            else:
                del res["DependsOn"]
        # An EventBridge rule keeps its name, schedule and state; its targets that are dropped
        # functions go (the digest schedule's only target is the digest function).
        if res["Type"] == "AWS::Events::Rule":
            targets = res.get("Properties", {}).get("Targets")
            if targets is not None:
                res["Properties"]["Targets"] = [x for x in targets if not (_refs(x) & set(dropped))]
                if not res["Properties"]["Targets"]:
                    del res["Properties"]["Targets"]
        # Ref of a function or configuration set: its fixed name (see REF_NAME_PROPERTY).
        res["Properties"] = _replace_refs(res.get("Properties", {}), names)
        left = _refs(res) & set(dropped)
        if left:
            raise RehearsalError(
                f"{lid} ({res['Type']}) still references the left-out {', '.join(sorted(left))}: "
                "teach infra/rehearse.py (drop_resources) what to do with it"
            )

    # Outputs about dropped resources (WebApiUrl: the function URL) go.
    for name, out in list(t.get("Outputs", {}).items()):
        if _refs(out) & set(dropped):
            del t["Outputs"][name]
            dropped_out = f"output {name}"
            dropped[dropped_out] = {"Type": "Output", "_why": "its value is a left-out resource's"}
    why = [(lid, res["Type"], res.get("_why") or DROPPED_TYPES[res["Type"]]) for lid, res in dropped.items()]
    return t, why


# ------------------------------------------------------------------ resolving values for checks

class Resolver:
    """Resolves the template's intrinsic functions to what the stack actually has: parameters,
    pseudo parameters, physical ids, and attributes read back from the services."""

    def __init__(self, params, pseudo, physical, getatt):
        self.params, self.pseudo, self.physical, self.getatt = params, pseudo, physical, getatt

    def ref(self, name):
        if name in self.params:
            return self.params[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name]
        raise RehearsalError(f"cannot resolve Ref {name}")

    def __call__(self, v):
        if isinstance(v, list):
            return [self(x) for x in v]
        if not isinstance(v, dict):
            return v
        if set(v) == {"Ref"}:
            return self.ref(v["Ref"])
        if set(v) == {"Fn::GetAtt"}:
            lid, attr = v["Fn::GetAtt"] if isinstance(v["Fn::GetAtt"], list) else v["Fn::GetAtt"].split(".", 1)
            return self.getatt(lid, attr)
        if set(v) == {"Fn::Sub"}:
            sub = v["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], self(sub[1]))

            def one(m):
                name = m.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in variables:
                    return str(variables[name])
                if "." in name:
                    lid, attr = name.split(".", 1)
                    return str(self.getatt(lid, attr))
                return str(self.ref(name))

            return re.sub(r"\$\{([^}]*)\}", one, text)
        if len(v) == 1 and next(iter(v)).startswith("Fn::"):
            raise RehearsalError(f"no resolver for {next(iter(v))}")
        return {k: self(x) for k, x in v.items()}


def norm_policy(doc, version_of=None):
    """A policy document in a comparable form: one-element lists as their element, sorted
    action lists, statements sorted. LocalStack's IAM adds "Version": "2012-10-17" to a role's
    inline policy that has none (SAM's policy templates have none): with version_of, the
    template's document, a Version that it does not set is not compared."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    if version_of is not None and "Version" not in version_of:
        doc = {k: v for k, v in doc.items() if k != "Version"}

    def n(v):
        if isinstance(v, dict):
            return {k: n(x) for k, x in sorted(v.items())}
        if isinstance(v, list):
            items = [n(x) for x in v]
            if len(items) == 1:
                return items[0]
            return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
        return v

    out = n(doc)
    if isinstance(out.get("Statement"), dict):
        out["Statement"] = [out["Statement"]]
    return out


# ------------------------------------------------------------------ the rehearsal

class Rehearsal:
    def __init__(self, endpoint, region, stack, prefix, timeout):
        import boto3

        self.endpoint, self.region, self.stack, self.prefix, self.timeout = endpoint, region, stack, prefix, timeout
        # Every client gets the LocalStack endpoint explicitly: env.sh also sets
        # AWS_ENDPOINT_URL_DYNAMODB (DynamoDB Local, port 8000, the app's), which boto3 would
        # otherwise prefer for DynamoDB; the stack's tables are in LocalStack.
        session = boto3.session.Session(region_name=region)
        self.c = {s: session.client(s, endpoint_url=endpoint) for s in (
            "cloudformation", "sqs", "sns", "dynamodb", "iam", "cloudwatch", "events", "sts")}
        self.stack_id = None
        self.seen_events = set()
        self.failed_events = []
        self.first_event = None
        self.results = []  # (logical id, type, physical id, summary)
        self.failures = []

    # ---------------------------------------------------------- create / wait / delete

    def create(self, template):
        """Asks for the stack; returns when the request was made (time.monotonic())."""
        body = json.dumps(template)
        t0 = time.monotonic()
        say(f"creating stack {self.stack} (NamePrefix={self.prefix}, {len(template['Resources'])} resources, "
            f"{len(body)} bytes) on {self.endpoint}")
        resp = self.c["cloudformation"].create_stack(
            StackName=self.stack,
            TemplateBody=body,
            Parameters=[{"ParameterKey": "NamePrefix", "ParameterValue": self.prefix}],
            # The roles have generated names (CAPABILITY_IAM), the bridge's policy a fixed one.
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            OnFailure="DO_NOTHING",  # keep the failed resources' reasons; deleted at the end
            Tags=[{"Key": "fmn:rehearsal", "Value": "true"}],
        )
        self.stack_id = resp["StackId"]
        return t0

    def _events(self, seen):
        """New stack events, oldest first."""
        new = []
        paginator = self.c["cloudformation"].get_paginator("describe_stack_events")
        for page in paginator.paginate(StackName=self.stack_id):
            for e in page["StackEvents"]:
                if e["EventId"] in seen:
                    continue
                seen.add(e["EventId"])
                new.append(e)
        new.reverse()  # the API lists newest first; same-timestamp events keep their order
        new.sort(key=lambda e: e["Timestamp"])
        return new

    def wait(self, goal, action, t0):
        """Polls the stack until it leaves *_IN_PROGRESS, printing its events; returns the seconds
        since t0 (when the operation was asked for)."""
        cfn = self.c["cloudformation"]
        seen = self.seen_events
        status = None
        while True:
            stacks = cfn.describe_stacks(StackName=self.stack_id)["Stacks"]
            status = stacks[0]["StackStatus"]
            for e in self._events(seen):
                if e["LogicalResourceId"] == self.stack and e["ResourceType"] == "AWS::CloudFormation::Stack":
                    continue
                reason = e.get("ResourceStatusReason") or ""
                self.first_event = self.first_event or e["Timestamp"]
                if e["ResourceStatus"].endswith("FAILED"):
                    self.failed_events.append(e)
                at = (e["Timestamp"] - self.first_event).total_seconds()
                info(f"{at:5.1f}s  {e['ResourceStatus']:<20} {e['ResourceType']:<32} "
                     f"{e['LogicalResourceId']}{'  ' + reason if reason and 'FAILED' in e['ResourceStatus'] else ''}")
            if not status.endswith("_IN_PROGRESS"):
                break
            if time.monotonic() - t0 > self.timeout:
                raise RehearsalError(f"{action}: stack still {status} after {self.timeout} s "
                                     "(FMN_REHEARSAL_TIMEOUT=<s> waits longer)")
            time.sleep(1)
        took = time.monotonic() - t0
        if status != goal:
            reason = stacks[0].get("StackStatusReason") or ""
            lines = [f"{action}: stack {self.stack} is {status}, not {goal} ({took:.1f} s){': ' + reason if reason else ''}"]
            # Each failed resource with its reason: from the stack's resources, and from its events
            # (LocalStack does not always list a resource whose creation failed).
            failed = {}
            for r in cfn.describe_stack_resources(StackName=self.stack_id)["StackResources"]:
                if r["ResourceStatus"].endswith("FAILED"):
                    failed[r["LogicalResourceId"]] = r
            for e in self.failed_events:
                if e["LogicalResourceId"] != self.stack:
                    failed.setdefault(e["LogicalResourceId"], e)
            for lid, r in failed.items():
                lines.append(f"  {lid} ({r['ResourceType']}): {r['ResourceStatus']}: "
                             f"{r.get('ResourceStatusReason') or '(no reason given: see LocalStack log, $FMN_LOCAL_DIR/logs/localstack.log)'}")
            raise RehearsalError("\n".join(lines))
        say(f"{action}: {status} in {took:.1f} s")
        return took

    def delete(self):
        if not self.stack_id:
            return
        say(f"deleting stack {self.stack}")
        t0 = time.monotonic()
        self.c["cloudformation"].delete_stack(StackName=self.stack_id)
        self.wait("DELETE_COMPLETE", "delete", t0)
        left = self.leftovers()
        if left:
            raise RehearsalError(f"stack deleted but its resources are still there: {', '.join(left)}")
        info(f"nothing named {self.prefix}-* is left (queues, tables, topics, alarms, rules, roles, policies)")

    def leftovers(self):
        c, p = self.c, self.prefix
        left = [u.rsplit("/", 1)[1] for u in c["sqs"].list_queues(QueueNamePrefix=p).get("QueueUrls", [])]
        left += [t for t in c["dynamodb"].list_tables().get("TableNames", []) if t.startswith(p + "-")]
        left += [t["TopicArn"].rsplit(":", 1)[1] for t in c["sns"].list_topics().get("Topics", [])
                 if t["TopicArn"].rsplit(":", 1)[1].startswith(p + "-")]
        left += [a["AlarmName"] for a in c["cloudwatch"].describe_alarms(AlarmNamePrefix=p).get("MetricAlarms", [])]
        left += [r["Name"] for r in c["events"].list_rules(NamePrefix=p).get("Rules", [])]
        left += [pol["PolicyName"] for pol in c["iam"].list_policies(Scope="Local").get("Policies", [])
                 if pol["PolicyName"].startswith(p + "-")]
        left += [r["RoleName"] for r in c["iam"].list_roles().get("Roles", [])
                 if r["RoleName"].startswith(self.stack + "-")]
        return left

    # ---------------------------------------------------------- checks

    def check(self, template):
        cfn = self.c["cloudformation"]
        resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName=self.stack_id)["StackResources"]}
        missing = sorted(set(template["Resources"]) - set(resources))
        if missing:
            self.failures.append(f"the stack has no resource {', '.join(missing)}")
        physical = {lid: r.get("PhysicalResourceId") for lid, r in resources.items()}
        account = self.c["sts"].get_caller_identity()["Account"]
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": account, "AWS::Partition": "aws",
                  "AWS::StackName": self.stack, "AWS::StackId": self.stack_id, "AWS::URLSuffix": "amazonaws.com"}
        params = {k: str(p.get("Default", "")) for k, p in template.get("Parameters", {}).items()}
        params["NamePrefix"] = self.prefix
        self.template = template
        self.resolve = Resolver(params, pseudo, physical, self.getatt)
        self.physical = physical
        self._queue_attrs = {}

        say("checking the resources against the template")
        for lid, res in template["Resources"].items():
            if lid not in physical:
                continue
            kind = res["Type"]
            check = getattr(self, "check_" + kind.replace("AWS::", "").replace("::", "_").lower(), None)
            problems = []
            summary = ""
            if check is None:
                problems.append(f"no check for {kind}: add one to infra/rehearse.py")
            else:
                try:
                    summary = check(lid, self.resolve(res.get("Properties", {})), physical[lid], problems)
                except Exception as e:  # a read-back that fails is a failed check
                    problems.append(f"{type(e).__name__}: {e}")
            for p in problems:
                self.failures.append(f"{lid} ({kind}): {p}")
            self.results.append((lid, kind, physical[lid], "FAILED: " + problems[0] if problems else summary))
        self.check_outputs(template)

    def getatt(self, lid, attr):
        kind = self.template["Resources"][lid]["Type"]
        phys = self.physical[lid]
        if kind == "AWS::SQS::Queue":
            attrs = self.queue_attrs(phys)
            return {"Arn": attrs["QueueArn"], "QueueName": phys.rsplit("/", 1)[1], "QueueUrl": phys}[attr]
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return self.c["dynamodb"].describe_table(TableName=phys)["Table"]["TableArn"]
        if kind == "AWS::SNS::Topic" and attr == "TopicArn":
            return phys
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return self.c["iam"].get_role(RoleName=phys)["Role"]["Arn"]
        raise RehearsalError(f"no resolver for Fn::GetAtt {lid}.{attr} ({kind})")

    def queue_attrs(self, url):
        if url not in self._queue_attrs:
            self._queue_attrs[url] = self.c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return self._queue_attrs[url]

    @staticmethod
    def expect(problems, what, want, got):
        if want != got:
            problems.append(f"{what}: template {want!r}, LocalStack {got!r}")

    def check_sqs_queue(self, lid, props, url, problems):
        a = self.queue_attrs(url)
        name = url.rsplit("/", 1)[1]
        self.expect(problems, "QueueName", props["QueueName"], name)
        fifo = str(props.get("FifoQueue", False)).lower() == "true"
        self.expect(problems, "FifoQueue", fifo, a.get("FifoQueue", "false") == "true")
        for key, default in (("VisibilityTimeout", 30), ("MessageRetentionPeriod", 345600)):
            self.expect(problems, key, int(props.get(key, default)), int(a[key]))
        parts = [f"fifo={'yes' if fifo else 'no'}", f"visibility {a['VisibilityTimeout']} s",
                 f"retention {int(a['MessageRetentionPeriod']) // 86400} d"]
        if "RedrivePolicy" in props:
            want = props["RedrivePolicy"]
            got = json.loads(a.get("RedrivePolicy", "{}"))
            self.expect(problems, "RedrivePolicy.deadLetterTargetArn", want["deadLetterTargetArn"], got.get("deadLetterTargetArn"))
            self.expect(problems, "RedrivePolicy.maxReceiveCount", int(want["maxReceiveCount"]), int(got.get("maxReceiveCount", -1)))
            dlq = got.get("deadLetterTargetArn", "?").rsplit(":", 1)[1]
            # SQS: a FIFO queue's dead-letter queue must be FIFO too.
            if fifo != dlq.endswith(".fifo"):
                problems.append(f"FIFO queue {name} with dead-letter queue {dlq} of the other kind")
            parts.append(f"-> {dlq} after {got.get('maxReceiveCount')} receives")
        elif "RedrivePolicy" in a:
            problems.append(f"unexpected RedrivePolicy {a['RedrivePolicy']}")
        return ", ".join(parts)

    def check_sqs_queuepolicy(self, lid, props, phys, problems):
        for url in props["Queues"]:
            got = self.c["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"].get("Policy")
            if not got:
                problems.append(f"queue {url} has no Policy")
                continue
            self.expect(problems, f"Policy of {url}", norm_policy(props["PolicyDocument"]), norm_policy(got))
        stmt = props["PolicyDocument"]["Statement"][0]
        return f"{stmt['Principal']} may {stmt['Action']} from {stmt.get('Condition', {}).get('ArnEquals', {}).get('aws:SourceArn', '?').rsplit(':', 1)[1]}"

    def check_sns_topic(self, lid, props, arn, problems):
        a = self.c["sns"].get_topic_attributes(TopicArn=arn)["Attributes"]
        self.expect(problems, "TopicName", props["TopicName"], a["TopicArn"].rsplit(":", 1)[1])
        subs = self.c["sns"].list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
        return f"{len(subs)} subscription(s)" + (" (operators subscribe after deploy)" if not subs else "")

    def check_sns_subscription(self, lid, props, arn, problems):
        subs = self.c["sns"].list_subscriptions_by_topic(TopicArn=props["TopicArn"])["Subscriptions"]
        mine = [s for s in subs if s["Endpoint"] == props["Endpoint"] and s["Protocol"] == props["Protocol"]]
        if not mine:
            problems.append(f"topic {props['TopicArn']} has no {props['Protocol']} subscription to {props['Endpoint']} ({subs})")
            return ""
        a = self.c["sns"].get_subscription_attributes(SubscriptionArn=mine[0]["SubscriptionArn"])["Attributes"]
        raw = str(props.get("RawMessageDelivery", False)).lower()
        self.expect(problems, "RawMessageDelivery", raw, a.get("RawMessageDelivery", "false").lower())
        return f"{props['Protocol']} -> {props['Endpoint'].rsplit(':', 1)[1]}, raw={raw}"

    def check_dynamodb_table(self, lid, props, name, problems):
        t = self.c["dynamodb"].describe_table(TableName=name)["Table"]
        self.expect(problems, "TableName", props["TableName"], t["TableName"])
        self.expect(problems, "TableStatus", "ACTIVE", t["TableStatus"])
        self.expect(problems, "KeySchema", props["KeySchema"], t["KeySchema"])
        key = lambda d: d["AttributeName"]
        self.expect(problems, "AttributeDefinitions", sorted(props["AttributeDefinitions"], key=key),
                    sorted(t["AttributeDefinitions"], key=key))
        self.expect(problems, "BillingMode", props.get("BillingMode", "PROVISIONED"),
                    t.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"))
        gsis = lambda l: sorted(((g["IndexName"], json.dumps(g["KeySchema"]), json.dumps(g["Projection"], sort_keys=True))
                                 for g in l), key=lambda x: x[0])
        self.expect(problems, "GlobalSecondaryIndexes", gsis(props.get("GlobalSecondaryIndexes", [])),
                    gsis(t.get("GlobalSecondaryIndexes", [])))
        ttl = self.c["dynamodb"].describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        want = props.get("TimeToLiveSpecification")
        if want and str(want.get("Enabled")).lower() == "true":
            self.expect(problems, "TimeToLive", ("ENABLED", want["AttributeName"]),
                        (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")))
        else:
            self.expect(problems, "TimeToLive", "DISABLED", ttl.get("TimeToLiveStatus", "DISABLED"))
        keys = "+".join(f"{k['AttributeName']}({k['KeyType'][0]})" for k in t["KeySchema"])
        return (f"key {keys}, {len(t.get('GlobalSecondaryIndexes', []))} GSI, "
                f"ttl {ttl.get('AttributeName', 'off') if ttl.get('TimeToLiveStatus') == 'ENABLED' else 'off'}")

    def check_iam_role(self, lid, props, name, problems):
        iam = self.c["iam"]
        role = iam.get_role(RoleName=name)["Role"]
        self.expect(problems, "AssumeRolePolicyDocument", norm_policy(props["AssumeRolePolicyDocument"]),
                    norm_policy(role["AssumeRolePolicyDocument"]))
        want = {p["PolicyName"]: norm_policy(p["PolicyDocument"]) for p in props.get("Policies", [])}
        got = {}
        for pname in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            template_doc = next((p["PolicyDocument"] for p in props.get("Policies", []) if p["PolicyName"] == pname), None)
            got[pname] = norm_policy(iam.get_role_policy(RoleName=name, PolicyName=pname)["PolicyDocument"], template_doc)
        self.expect(problems, "inline policy names", sorted(want), sorted(got))
        for pname in set(want) & set(got):
            self.expect(problems, f"policy {pname}", want[pname], got[pname])
        attached = sorted(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"])
        self.expect(problems, "ManagedPolicyArns", sorted(props.get("ManagedPolicyArns", [])), attached)
        statements = sum(len(d["Statement"]) for d in got.values())
        return f"{len(got)} inline policies ({statements} statements), {len(attached)} managed"

    def check_iam_managedpolicy(self, lid, props, arn, problems):
        iam = self.c["iam"]
        pol = iam.get_policy(PolicyArn=arn)["Policy"]
        self.expect(problems, "ManagedPolicyName", props["ManagedPolicyName"], pol["PolicyName"])
        doc = iam.get_policy_version(PolicyArn=arn, VersionId=pol["DefaultVersionId"])["PolicyVersion"]["Document"]
        doc = norm_policy(doc)
        self.expect(problems, "PolicyDocument", norm_policy(props["PolicyDocument"]), doc)
        return "; ".join(f"{s['Action']} on {s['Resource'].rsplit(':', 1)[1]}" for s in doc["Statement"])

    def check_cloudwatch_alarm(self, lid, props, name, problems):
        alarms = self.c["cloudwatch"].describe_alarms(AlarmNames=[props["AlarmName"]])["MetricAlarms"]
        if not alarms:
            problems.append(f"no alarm {props['AlarmName']}")
            return ""
        a = alarms[0]
        for key in ("AlarmDescription", "Namespace", "MetricName", "Statistic", "ComparisonOperator", "TreatMissingData"):
            self.expect(problems, key, props.get(key), a.get(key))
        for key in ("Period", "EvaluationPeriods"):
            self.expect(problems, key, int(props[key]), int(a[key]))
        self.expect(problems, "Threshold", float(props["Threshold"]), float(a["Threshold"]))
        self.expect(problems, "AlarmActions", props.get("AlarmActions", []), a.get("AlarmActions", []))
        self.expect(problems, "Dimensions", props.get("Dimensions", []), a.get("Dimensions", []))
        # The dimension must name what the stack has: a queue of this stack, or (a function's
        # Errors) the function name the template deploys.
        stack_queues = {self.physical[q].rsplit("/", 1)[1] for q, r in self.template["Resources"].items()
                        if r["Type"] == "AWS::SQS::Queue"}
        for d in a.get("Dimensions", []):
            if d["Name"] == "QueueName" and d["Value"] not in stack_queues:
                problems.append(f"dimension QueueName={d['Value']} is no queue of this stack")
            if d["Name"] == "FunctionName" and not d["Value"].startswith(self.prefix + "-"):
                problems.append(f"dimension FunctionName={d['Value']} is not one of this stack's function names")
        dims = ", ".join(f"{d['Name']}={d['Value']}" for d in a.get("Dimensions", []))
        return f"{a['Namespace']} {a['MetricName']} [{dims}] {a['ComparisonOperator']} {a['Threshold']:g} -> alarm topic"

    def check_events_rule(self, lid, props, name, problems):
        ev = self.c["events"]
        r = ev.describe_rule(Name=props["Name"])
        self.expect(problems, "ScheduleExpression", props.get("ScheduleExpression"), r.get("ScheduleExpression"))
        self.expect(problems, "State", props.get("State", "ENABLED"), r.get("State"))
        targets = ev.list_targets_by_rule(Rule=props["Name"])["Targets"]
        self.expect(problems, "Targets", sorted(t["Id"] for t in props.get("Targets", [])), sorted(t["Id"] for t in targets))
        return f"{r.get('ScheduleExpression')} {r.get('State')}, {len(targets)} targets (the digest function is left out)"

    def check_outputs(self, template):
        stack = self.c["cloudformation"].describe_stacks(StackName=self.stack_id)["Stacks"][0]
        got = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])}
        for name, out in template.get("Outputs", {}).items():
            want = self.resolve(out["Value"])
            problems = []
            self.expect(problems, "value", want, got.get(name))
            for p in problems:
                self.failures.append(f"output {name}: {p}")
            self.results.append((f"output {name}", "Output", got.get(name) or "-", "FAILED: " + problems[0] if problems else "as the template says"))


def print_table(rows, dropped):
    say("created by CloudFormation in LocalStack and checked")
    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    for lid, kind, phys, summary in rows:
        short = phys.rsplit("/", 1)[-1] if phys.startswith("http") else phys.rsplit(":", 1)[-1] if phys.startswith("arn:") else phys
        print(f"    {lid:<{w1}}  {kind:<{w2}}  {short:<34}  {summary}")
    say("left out (see infra/rehearse.py, DROPPED_TYPES)")
    for lid, kind, why in dropped:
        print(f"    {lid:<{w1}}  {kind:<{w2}}  {why}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transform-only", action="store_true",
                    help="print the CloudFormation template the rehearsal deploys (no LocalStack)")
    ap.add_argument("--keep", action="store_true", help="do not delete the stack at the end (debugging)")
    args = ap.parse_args()

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    t_start = time.monotonic()
    try:
        translated = translate(region)
        template, dropped = drop_resources(translated)
    except RehearsalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.transform_only:
        json.dump(template, sys.stdout, indent=2)
        print()
        for lid, kind, why in dropped:
            print(f"left out: {lid} ({kind}): {why}", file=sys.stderr)
        return 0
    say(f"translated {os.path.relpath(TEMPLATE, REPO)} with samtranslator: {len(translated['Resources'])} resources, "
        f"{len([d for d in dropped if d[1] != 'Output'])} left out, {len(template['Resources'])} to create")

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        # Never against a real account: the rehearsal is for LocalStack.
        print("error: AWS_ENDPOINT_URL is not set (source localstack/env.sh): refusing to run against real AWS", file=sys.stderr)
        return 1
    suffix = secrets.token_hex(3)
    stack = f"fmn-rehearsal-{time.strftime('%H%M%S')}-{suffix}"
    prefix = f"fmnr{suffix}"
    timeout = int(os.environ.get("FMN_REHEARSAL_TIMEOUT", "300"))
    r = Rehearsal(endpoint, region, stack, prefix, timeout)

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        t0 = r.create(template)
        create_s = r.wait("CREATE_COMPLETE", "create", t0)
        r.check(template)
        print_table(r.results, dropped)
        if r.failures:
            print(f"error: {len(r.failures)} check(s) failed:", file=sys.stderr)
            for f in r.failures:
                print(f"  {f}", file=sys.stderr)
        else:
            say(f"all {len(r.results)} resources and outputs are as the template says (created in {create_s:.1f} s)")
            ok = True
    except RehearsalError as e:
        print(f"error: {e}", file=sys.stderr)
    except KeyboardInterrupt as e:
        print(f"error: interrupted ({e or 'Ctrl-C'})", file=sys.stderr)
    except Exception as e:  # botocore errors: connection refused, an API LocalStack lacks, ...
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        if args.keep and r.stack_id:
            say(f"--keep: stack {stack} left in LocalStack (delete: aws cloudformation delete-stack --stack-name {stack})")
        else:
            try:
                r.delete()
            except Exception as e:
                print(f"error: deleting stack {stack}: {e}", file=sys.stderr)
                ok = False
    say(f"rehearsal {'passed' if ok else 'FAILED'} in {time.monotonic() - t_start:.1f} s")
    # The plain closing line test runners' summaries are read for: one per resource or output
    # checked, and a failed create, check run or delete as one more failure.
    passed = sum(1 for row in r.results if not row[3].startswith("FAILED"))
    failed = len(r.results) - passed + (0 if ok or len(r.results) > passed else 1)
    print(f"rehearsal: {passed} passed, {failed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
