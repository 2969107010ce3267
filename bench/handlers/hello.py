#!/usr/bin/python3
"""A hello-world Mongrel2 handler written the way the manual's Python demos
are (chapter 5: "Parsing Mongrel2 Requests In Python" and "Generating
Responses"), on plain pyzmq: PULL requests from the server's send_spec, PUB
replies to its recv_spec. No code of m2bridge; the reference handler that
bench/core-handler.ts measures our TypeScript handler against.

    /usr/bin/python3 bench/handlers/hello.py SEND_SPEC RECV_SPEC

Prints "ready" once both sockets are connected; stops on SIGTERM/SIGINT.
"""
import json
import signal
import sys

import zmq

BODY = b"Hello World\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"\r\n" + BODY
)


def parse_netstring(ns):
    length, rest = ns.split(b":", 1)
    length = int(length)
    assert rest[length:length + 1] == b",", "Netstring did not end in ,"
    return rest[:length], rest[length + 1:]


def parse(msg):
    sender, conn_id, path, rest = msg.split(b" ", 3)
    headers, rest = parse_netstring(rest)
    body, _ = parse_netstring(rest)
    return sender, conn_id, path, json.loads(headers), body


def main():
    send_spec, recv_spec = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    reqs = ctx.socket(zmq.PULL)
    reqs.connect(send_spec)
    resp = ctx.socket(zmq.PUB)
    resp.connect(recv_spec)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            sender, conn_id, _path, headers, _body = parse(reqs.recv())
            # disconnect notices arrive as METHOD JSON: nothing to answer
            if headers.get("METHOD") == "JSON":
                continue
            header = b"%s %d:%s," % (sender, len(conn_id), conn_id)
            resp.send(header + b" " + RESPONSE)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        reqs.close(0)
        resp.close(0)
        ctx.term()


if __name__ == "__main__":
    main()
