#!/usr/bin/env python3
"""The real fedora-messaging publisher of the ingest-bridge tests.

Reads messages in the corpus / `fedora-messaging consume --callback=...:dumps` form, one JSON
object per line (`{id, topic, headers, body, priority, queue, ...}`; extra keys such as
`expected` are ignored), loads each with `fedora_messaging.message.load_message` (so it is an
instance of its real schema class when the schema package is installed, and keeps its id,
headers and `sent-at`), and publishes it with the library's own `fedora_messaging.api.publish`
(validation, publisher confirms). Prints each published message id on its own line; exits
non-zero on the first failure.

The broker, TLS files and exchange come from a fedora-messaging configuration file
(`--config`, else $FEDORA_MESSAGING_CONF), e.g.

    amqp_url = "amqps://127.0.0.1:5671/%2Fpublic_pubsub"
    publish_exchange = "amq.topic"
    [tls]
    ca_cert = "/path/cacert.pem"
    keyfile = "/path/client.key"
    certfile = "/path/client.pem"

With a client certificate the library logs in with SASL EXTERNAL, as against Fedora's broker.

Helpers that need no Rust AMQP client:
  --declare-queue NAME  declare a durable queue and bind it to the publish exchange (routing
                        keys from --bind, default `#`), then publish FILE if one is given.
  --raw                 publish each line's `body` exactly as given, bypassing the library (no
                        schema, no validation: for malformed messages): a string body is sent
                        as its UTF-8 bytes, anything else as JSON; `headers`, `id` (message_id),
                        `content_type` and `content_encoding` are used when present. With
                        publisher confirms, over the same connection settings.
  --check-login         open one connection the way the library does (TLS, client certificate,
                        EXTERNAL) and exit 0 when the broker accepts it, 3 when it refuses it
                        (TLS handshake or login), 1 on anything else.
"""

import argparse
import json
import logging
import os
import sys
import time
import uuid

# A fixed namespace for the ids of repeated messages (--repeat): repeat k of message m gets
# uuid5(NS, f"{m.id}/{k}"), so reruns are reproducible and every published id is unique.
REPEAT_NAMESPACE = uuid.UUID("2f9c3a55-8e8d-4f0f-9a53-6a4b7d0f1e21")

EXIT_REFUSED = 3


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("file", nargs="?", help="JSON Lines file of messages ('-' for stdin)")
    p.add_argument("--config", help="fedora-messaging TOML (default: $FEDORA_MESSAGING_CONF)")
    p.add_argument("--skip", type=int, default=0, help="skip the first N lines")
    p.add_argument("--limit", type=int, default=None, help="use at most N lines (after --skip)")
    p.add_argument(
        "--count",
        type=int,
        default=None,
        help="publish exactly N messages, cycling over the lines with fresh ids after the first pass",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="publish the lines N times; passes after the first get fresh, derived ids",
    )
    p.add_argument("--rate", type=float, default=None, help="at most N messages per second")
    p.add_argument("--timeout", type=int, default=30, help="seconds to wait for each publish")
    p.add_argument("--declare-queue", metavar="NAME", help="declare and bind a durable queue")
    p.add_argument(
        "--bind",
        action="append",
        metavar="ROUTING_KEY",
        help="routing key(s) for --declare-queue (default: #)",
    )
    p.add_argument("--raw", action="store_true", help="publish bodies as given (see above)")
    p.add_argument("--check-login", action="store_true", help="only test that the broker lets us in")
    args = p.parse_args(argv)
    if not (args.file or args.declare_queue or args.check_login):
        p.error("nothing to do: give FILE, --declare-queue or --check-login")
    return args


def pika_parameters():
    """The pika connection parameters the library itself would use (TLS, EXTERNAL)."""
    import pika
    from fedora_messaging import config
    from fedora_messaging.twisted.service import _configure_tls_parameters

    url = config.conf["amqp_url"]
    params = pika.URLParameters(url)
    if url.startswith("amqps"):
        _configure_tls_parameters(params)
    params.client_properties = {"app": "fmn tests fedora-messaging publisher"}
    params.connection_attempts = 1
    params.socket_timeout = 10
    params.blocked_connection_timeout = 10
    return params


def check_login():
    import pika

    try:
        conn = pika.BlockingConnection(pika_parameters())
    except (
        pika.exceptions.ProbableAuthenticationError,
        pika.exceptions.AuthenticationError,
        pika.exceptions.ProbableAccessDeniedError,
        pika.exceptions.IncompatibleProtocolError,
        pika.exceptions.StreamLostError,
        pika.exceptions.AMQPConnectionError,
    ) as e:
        print(f"refused: {type(e).__name__}: {e!r}")
        return EXIT_REFUSED
    conn.close()
    print("accepted")
    return 0


def declare_queue(name, routing_keys):
    import pika
    from fedora_messaging import config

    exchange = config.conf["publish_exchange"]
    conn = pika.BlockingConnection(pika_parameters())
    try:
        ch = conn.channel()
        ch.queue_declare(queue=name, durable=True, auto_delete=False, exclusive=False)
        for key in routing_keys:
            ch.queue_bind(queue=name, exchange=exchange, routing_key=key)
    finally:
        conn.close()
    print(f"declared {name} bound to {exchange} with {' '.join(routing_keys)}", file=sys.stderr)


def read_lines(path, skip, limit):
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    with stream:
        lines = [line for line in stream if line.strip()]
    lines = lines[skip:]
    if limit is not None:
        lines = lines[:limit]
    return [json.loads(line) for line in lines]


def messages(records, repeat, count):
    """Yields (pass number, record) in publishing order."""
    if count is not None:
        n = 0
        k = 0
        while n < count:
            for record in records:
                if n >= count:
                    return
                yield k, record
                n += 1
            k += 1
            if not records:
                return
    else:
        for k in range(repeat):
            for record in records:
                yield k, record


def publish_all(args):
    from fedora_messaging import api, message

    records = read_lines(args.file, args.skip, args.limit)
    keep = {"id", "topic", "headers", "body", "priority", "queue"}
    interval = 1.0 / args.rate if args.rate else 0.0
    next_at = time.monotonic()
    published = 0
    for k, record in messages(records, args.repeat, args.count):
        data = {key: value for key, value in record.items() if key in keep}
        if k > 0 and "id" in data:
            data["id"] = str(uuid.uuid5(REPEAT_NAMESPACE, f"{data['id']}/{k}"))
        msg = message.load_message(data)
        if interval:
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            next_at = max(now, next_at) + interval
        api.publish(msg, timeout=args.timeout)
        print(msg.id, flush=True)
        published += 1
    print(f"published {published} messages", file=sys.stderr)
    return 0


def publish_raw(args):
    import pika
    from fedora_messaging import config

    exchange = config.conf["publish_exchange"]
    records = read_lines(args.file, args.skip, args.limit)
    conn = pika.BlockingConnection(pika_parameters())
    published = 0
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for record in records:
            body = record.get("body", "")
            if isinstance(body, str):
                data = body.encode("utf-8")
            else:
                data = json.dumps(body).encode("utf-8")
            message_id = record.get("id") or str(uuid.uuid4())
            props = pika.BasicProperties(
                content_type=record.get("content_type"),
                content_encoding=record.get("content_encoding"),
                delivery_mode=2,
                headers=record.get("headers"),
                message_id=message_id,
            )
            ch.basic_publish(exchange=exchange, routing_key=record["topic"], body=data, properties=props)
            print(message_id, flush=True)
            published += 1
    finally:
        conn.close()
    print(f"published {published} raw messages", file=sys.stderr)
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.config:
        os.environ["FEDORA_MESSAGING_CONF"] = os.path.abspath(args.config)
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="publish.py %(levelname)s %(name)s: %(message)s"
    )
    if args.check_login:
        # A refusal is the expected outcome of some checks: keep pika's tracebacks out.
        logging.getLogger("pika").setLevel(logging.CRITICAL)
        return check_login()
    if args.declare_queue:
        declare_queue(args.declare_queue, args.bind or ["#"])
    if args.file:
        return publish_raw(args) if args.raw else publish_all(args)
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception as e:  # noqa: BLE001 - any failure is a non-zero exit with its reason
        logging.getLogger("publish.py").exception("failed: %s", e)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # crochet's reactor thread can hold the interpreter at exit; the work is done (every
    # publish was confirmed), so leave at once.
    os._exit(code)
