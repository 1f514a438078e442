#!/usr/bin/env python3
"""Smoke test of the local AWS emulators started by localstack/start.sh.

Run it with the moto venv's python, which has boto3:

    .local/venv-moto/bin/python localstack/smoke.py [--with-schedule]

Checks, one line each (exit status 1 if any fails):
  sqs       LocalStack: queue with a RedrivePolicy (maxReceiveCount=2, VisibilityTimeout=1) to
            a DLQ; send, receive, and the message moving to the DLQ after two receives
  dynamodb  DynamoDB Local: create table, conditional put (the second one fails), get
  sesv2     moto: SES v1 verify_email_identity, SES v2 send_email (Raw and Simple), the mail
            read back from GET /moto-api/data.json; an unverified sender is rejected
  events    LocalStack: put_events to a pattern rule with an SQS target arrives; a rule with
            ScheduleExpression rate(1 minute) and an SQS target is accepted
  --with-schedule: waits (up to 130 s) for that scheduled rule's event to arrive in SQS

Endpoints come from the same variables as localstack/env.sh (with the same defaults).
Every resource is named fmn-smoke-<random> and deleted afterwards.
"""

import argparse
import base64
import json
import os
import sys
import time
import traceback
import urllib.request
import uuid

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:
    sys.exit("error: boto3 is missing: run this with .local/venv-moto/bin/python")

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
DYNAMODB = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
SESV2 = os.environ.get("AWS_ENDPOINT_URL_SESV2", "http://127.0.0.1:5055")
REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
KEY = os.environ.get("AWS_ACCESS_KEY_ID", "test")
SECRET = os.environ.get("AWS_SECRET_ACCESS_KEY", "test")

PREFIX = "fmn-smoke-" + uuid.uuid4().hex[:8]
CONFIG = Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30)


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        config=CONFIG,
    )


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


cleanups = []


def cleanup(fn, *args, **kwargs):
    cleanups.append((fn, args, kwargs))


def run_cleanups():
    while cleanups:
        fn, args, kwargs = cleanups.pop()
        try:
            fn(*args, **kwargs)
        except Exception as e:  # best effort
            print(f"  (cleanup {fn.__name__}: {e})", file=sys.stderr)


# --- SQS -------------------------------------------------------------------------------------
def make_queue(sqs, name, **attributes):
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    cleanup(sqs.delete_queue, QueueUrl=url)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def receive(sqs, url, wait=1):
    return sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=wait,
        AttributeNames=["ApproximateReceiveCount"],
    ).get("Messages", [])


def check_sqs():
    sqs = client("sqs", ENDPOINT)
    dlq_url, dlq_arn = make_queue(sqs, f"{PREFIX}-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url, _ = make_queue(sqs, f"{PREFIX}-main", RedrivePolicy=redrive, VisibilityTimeout="1")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    expect(
        json.loads(attrs["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn,
        f"RedrivePolicy not stored: {attrs}",
    )
    body = f"smoke {uuid.uuid4()}"
    sqs.send_message(QueueUrl=url, MessageBody=body)

    receives = 0
    deadline = time.time() + 20
    while receives < 2 and time.time() < deadline:
        msgs = receive(sqs, url, wait=2)
        for m in msgs:
            expect(m["Body"] == body, f"unexpected body {m['Body']!r}")
            receives += 1
        if msgs:
            time.sleep(1.2)  # let the visibility timeout (1 s) pass; do not delete
    expect(receives == 2, f"received the message {receives} time(s), expected 2")

    # The next receive attempt finds the receive count at maxReceiveCount: LocalStack moves the
    # message to the DLQ instead of returning it.
    moved = None
    deadline = time.time() + 20
    while moved is None and time.time() < deadline:
        extra = receive(sqs, url, wait=1)
        expect(not extra, f"message delivered a 3rd time from the main queue: {extra}")
        for m in receive(sqs, dlq_url, wait=1):
            if m["Body"] == body:
                moved = m
    expect(moved is not None, "message did not reach the DLQ within 20 s")
    return (
        f"queue URL {url}; received 2x, then moved to the DLQ "
        f"(ApproximateReceiveCount={moved['Attributes'].get('ApproximateReceiveCount')})"
    )


# --- DynamoDB --------------------------------------------------------------------------------
def check_dynamodb():
    ddb = client("dynamodb", DYNAMODB)
    table = f"{PREFIX}-table"
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    cleanup(ddb.delete_table, TableName=table)
    ddb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    item = {"pk": {"S": "user#1"}, "n": {"N": "1"}}
    ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    try:
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": "user#1"}, "n": {"N": "2"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        raise CheckFailed("second conditional put succeeded")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        expect(code == "ConditionalCheckFailedException", f"second put failed with {code}")
    got = ddb.get_item(TableName=table, Key={"pk": {"S": "user#1"}}, ConsistentRead=True)
    expect(got.get("Item") == item, f"get_item returned {got.get('Item')}")
    return "create table, conditional put (2nd: ConditionalCheckFailedException), get"


# --- SES v2 (moto) ---------------------------------------------------------------------------
def moto_data():
    with urllib.request.urlopen(f"{SESV2}/moto-api/data.json", timeout=10) as r:
        return json.loads(r.read())


def check_sesv2():
    sender = f"{PREFIX}@example.org"
    rcpt = "someone@example.com"
    # moto (like SES) only sends from a verified identity: SES v1 verify_email_identity (or
    # SES v2 create_email_identity) on the same account and region does it.
    client("ses", SESV2).verify_email_identity(EmailAddress=sender)
    sesv2 = client("sesv2", SESV2)

    marker = uuid.uuid4().hex
    raw = (
        f"From: FMN <{sender}>\r\nTo: {rcpt}\r\nSubject: smoke raw {marker}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"List-Id: <smoke.example.org>\r\n\r\nbody {marker}\r\n"
    ).encode()
    raw_id = sesv2.send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": [rcpt]},
        Content={"Raw": {"Data": raw}},
    )["MessageId"]
    simple_id = sesv2.send_email(
        FromEmailAddress=sender,
        Destination={"ToAddresses": [rcpt]},
        Content={
            "Simple": {
                "Subject": {"Data": f"smoke simple {marker}"},
                "Body": {"Text": {"Data": f"simple body {marker}"}},
            }
        },
    )["MessageId"]

    try:
        sesv2.send_email(
            FromEmailAddress=f"unverified-{marker}@example.net",
            Destination={"ToAddresses": [rcpt]},
            Content={"Raw": {"Data": raw.replace(sender.encode(), f"unverified-{marker}@example.net".encode())}},
        )
        raise CheckFailed("moto accepted mail from an unverified sender")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        expect(code == "MessageRejected", f"unverified sender: {code}, expected MessageRejected")

    ses = moto_data().get("ses", {})
    raws = [m for m in ses.get("RawMessage", []) if m.get("id") == raw_id]
    expect(len(raws) == 1, f"raw message {raw_id} not under ses.RawMessage in data.json")
    m = raws[0]
    expect(marker in m.get("raw_data", ""), "raw_data lacks the message")
    # moto appends the To/Cc/Bcc header addresses of the raw mail to Destination: here the
    # recipient is listed twice.
    expect(rcpt in m.get("destinations", []), f"destinations {m.get('destinations')}")
    expect(m.get("source") == sender, f"source {m.get('source')}")
    simples = [m for m in ses.get("Message", []) if m.get("id") == simple_id]
    expect(len(simples) == 1, f"simple message {simple_id} not under ses.Message in data.json")
    expect(simples[0].get("subject") == f"smoke simple {marker}", f"simple: {simples[0]}")
    return (
        f"Raw mail {raw_id} at data.json ses.RawMessage[] (keys {sorted(m)}); Simple at "
        f"ses.Message[] (keys {sorted(simples[0])}); unverified sender -> MessageRejected"
    )


# --- EventBridge (LocalStack) ----------------------------------------------------------------
def target_queue(sqs, name):
    url, arn = make_queue(sqs, name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return url, arn


def make_rule(events, name, queue_arn, **rule):
    events.put_rule(Name=name, State="ENABLED", **rule)
    cleanup(events.delete_rule, Name=name)
    events.put_targets(Rule=name, Targets=[{"Id": "sqs", "Arn": queue_arn}])
    cleanup(events.remove_targets, Rule=name, Ids=["sqs"])
    targets = events.list_targets_by_rule(Rule=name)["Targets"]
    expect([t["Arn"] for t in targets] == [queue_arn], f"targets of {name}: {targets}")


SCHEDULED = {}


def check_events():
    sqs = client("sqs", ENDPOINT)
    events = client("events", ENDPOINT)

    url, arn = target_queue(sqs, f"{PREFIX}-events")
    make_rule(
        events,
        f"{PREFIX}-pattern",
        arn,
        EventPattern=json.dumps({"source": ["fmn.smoke"], "detail-type": ["smoke"]}),
    )
    marker = uuid.uuid4().hex
    out = events.put_events(
        Entries=[{"Source": "fmn.smoke", "DetailType": "smoke", "Detail": json.dumps({"m": marker})}]
    )
    expect(out["FailedEntryCount"] == 0, f"put_events: {out}")
    got = None
    deadline = time.time() + 15
    while got is None and time.time() < deadline:
        for m in receive(sqs, url, wait=1):
            if json.loads(m["Body"]).get("detail", {}).get("m") == marker:
                got = m
    expect(got is not None, "put_events: event did not reach the SQS target within 15 s")

    s_url, s_arn = target_queue(sqs, f"{PREFIX}-sched")
    rule = f"{PREFIX}-rate"
    make_rule(events, rule, s_arn, ScheduleExpression="rate(1 minute)")
    desc = events.describe_rule(Name=rule)
    expect(desc.get("ScheduleExpression") == "rate(1 minute)", f"describe_rule: {desc}")
    SCHEDULED.update(url=s_url, rule=rule, created=time.time())
    return "put_events -> pattern rule -> SQS arrived; rule rate(1 minute) with SQS target accepted"


def check_schedule(timeout=130):
    sqs = client("sqs", ENDPOINT)
    t0 = SCHEDULED["created"]
    print(f"  waiting up to {timeout} s for the rate(1 minute) rule to fire...", flush=True)
    while time.time() - t0 < timeout:
        for m in receive(sqs, SCHEDULED["url"], wait=5):
            body = json.loads(m["Body"])
            expect(
                body.get("detail-type") == "Scheduled Event",
                f"unexpected event on the schedule queue: {body}",
            )
            expect(
                any(SCHEDULED["rule"] in r for r in body.get("resources", [])),
                f"scheduled event names other resources: {body.get('resources')}",
            )
            return f"'Scheduled Event' arrived {time.time() - t0:.0f} s after put_rule"
    raise CheckFailed(f"no scheduled event within {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--with-schedule", action="store_true", help="wait for the rate(1 minute) rule to fire")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    args = ap.parse_args()

    checks = [("sqs", check_sqs), ("dynamodb", check_dynamodb), ("sesv2", check_sesv2), ("events", check_events)]
    if args.with_schedule:
        checks.append(("schedule", check_schedule))
    print(f"smoke: LocalStack {ENDPOINT}, DynamoDB {DYNAMODB}, SES v2 {SESV2}, region {REGION}")
    failed = 0
    try:
        for name, fn in checks:
            if name == "schedule" and not SCHEDULED:
                print(f"FAIL {name:9} skipped: the events check did not create the rule")
                failed += 1
                continue
            t0 = time.time()
            try:
                detail = fn()
                print(f"ok   {name:9} {detail} ({time.time() - t0:.1f} s)", flush=True)
            except Exception as e:
                failed += 1
                kind = "" if isinstance(e, CheckFailed) else f"{type(e).__name__}: "
                print(f"FAIL {name:9} {kind}{e} ({time.time() - t0:.1f} s)", flush=True)
                if args.verbose:
                    traceback.print_exc()
    finally:
        run_cleanups()
    print(f"smoke: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
