#!/usr/bin/env python3
"""A real fedmsg publisher for the ingest-bridge tests.

It publishes through the `fedmsg` package itself (fedmsg.core.FedMsgContext.publish), so the
frames on the wire are exactly what Fedora's services sent: [topic, compact sorted-key JSON
envelope] with msg_id, i, timestamp, username (and, with --sign, an x509 signature made by
fedmsg.crypto.x509_ng).

Driven by JSON commands on stdin, one per line; answers one JSON line on stdout per command:

  {"cmd": "publish", "count": N, "topic": "bridge.test", "modname": "fmntest", "tag": "t1",
   "rate": 0 }        publish N messages (rate = messages/s, 0 = as fast as possible);
                      every envelope sent is appended to --log as {"topic": ..., "body": ...}
  {"cmd": "message", "topic": "org.fedoraproject.prod.bodhi.update.comment", "msg": {...}}
                      publish one message with this full topic and body (a corpus message
                      re-sent live: fedmsg gives it a new msg_id, i, timestamp, username);
                      answers {"published": 1, "msg_id": ...}
  {"cmd": "raw", "frames": ["...", "..."]}
                      send these frames verbatim (text) on the same PUB socket
  {"cmd": "quit"}     exit

The first line on stdout is {"ready": true, "endpoint": ...} once the socket is bound.
"""

import argparse
import json
import sys
import time

import fedmsg.config
import fedmsg.core
import fedmsg.encoding
import zmq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True, help="tcp://127.0.0.1:PORT to bind")
    ap.add_argument("--log", required=True, help="file receiving every envelope sent")
    ap.add_argument("--sign", action="store_true", help="sign messages (x509)")
    ap.add_argument("--ssldir", help="directory holding <certname>.key/.crt")
    ap.add_argument("--certname", default="publisher")
    args = ap.parse_args()

    name = "fmn-test.publisher"
    # fedmsg's own defaults (fedmsg.config.defaults), then what a bound service publisher sets;
    # no /etc/fedmsg.d is read.
    config = dict(fedmsg.config.defaults)
    config.pop("logging", None)
    config.update(
        name=name,
        endpoints={name: [args.endpoint]},
        active=False,  # bind, as a service's publisher does
        environment="dev",
        topic_prefix="org.fedoraproject",
        high_water_mark=0,
        post_init_sleep=0,
        zmq_linger=1000,
        sign_messages=args.sign,
        validate_signatures=False,
        crypto_backend="x509",
        crypto_validate_backends=["x509"],
        ssldir=args.ssldir,
        certnames={name: args.certname},
    )
    ctx = fedmsg.core.FedMsgContext(**config)
    log = open(args.log, "a", encoding="utf-8")

    def record(msg):
        # fedmsg calls this with the final envelope just before it encodes and sends it with
        # this same function, so the logged body is byte-for-byte the second frame.
        log.write(json.dumps({"topic": msg["topic"], "body": fedmsg.encoding.dumps(msg)}) + "\n")

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer({"ready": True, "endpoint": args.endpoint})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd["cmd"] == "publish":
            count = int(cmd.get("count", 1))
            rate = float(cmd.get("rate", 0))
            tag = cmd.get("tag", "")
            for n in range(count):
                ctx.publish(
                    topic=cmd.get("topic", "bridge.test"),
                    modname=cmd.get("modname", "fmntest"),
                    msg={"n": n, "tag": tag, "text": "héllo, wörld \u2603"},
                    pre_fire_hook=record,
                )
                if rate > 0:
                    time.sleep(1.0 / rate)
            log.flush()
            answer({"published": count})
        elif cmd["cmd"] == "message":
            # fedmsg joins modname and topic, and adds no prefix to a topic that already
            # starts with topic_prefix: split the full topic at its first dot.
            modname, suffix = cmd["topic"].split(".", 1)
            sent = []

            def hook(msg):
                record(msg)
                sent.append(msg["msg_id"])

            ctx.publish(topic=suffix, modname=modname, msg=cmd["msg"], pre_fire_hook=hook)
            log.flush()
            answer({"published": 1, "msg_id": sent[0]})
        elif cmd["cmd"] == "raw":
            frames = [f.encode("utf-8") for f in cmd["frames"]]
            ctx.publisher.send_multipart(frames, flags=zmq.NOBLOCK)
            answer({"sent": len(frames)})
        elif cmd["cmd"] == "quit":
            break
    log.close()
    ctx.destroy()


if __name__ == "__main__":
    main()
