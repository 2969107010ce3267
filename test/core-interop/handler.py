#!/usr/bin/env python3
"""A Mongrel2 handler written the way the manual's Python demos are: plain
zmq PULL from the server's send_spec, PUB to its recv_spec, requests parsed
by hand (netstrings / tnetstrings), replies as "UUID LEN:IDS, BODY".

    handler.py SEND_SPEC RECV_SPEC

Every message received is reported on stdout as one JSON line (so the test
can see requests and disconnect notices). Behaviour by path suffix:
  .../close   answer, then send the close message
  .../silent  never answer
  .../delay   answer after 300 ms (pipelining order)
  .../multi   hold the request; once two are held, answer both with ONE reply
  anything else: 200 with a JSON body describing the request
"""
import json
import sys
import time

import zmq


def parse_netstring(data):
    length, rest = data.split(b':', 1)
    length = int(length)
    return rest[:length], rest[length + 1:], rest[length:length + 1]


def parse_tnetstring(data):
    length, rest = data.split(b':', 1)
    length = int(length)
    payload, tag, rest = rest[:length], rest[length:length + 1], rest[length + 1:]
    if tag == b',':
        return payload.decode('utf-8', 'replace'), rest
    if tag == b']':
        out = []
        while payload:
            item, payload = parse_tnetstring(payload)
            out.append(item)
        return out, rest
    if tag == b'}':
        out = {}
        while payload:
            key, payload = parse_tnetstring(payload)
            value, payload = parse_tnetstring(payload)
            out[key] = value
        return out, rest
    raise ValueError('unexpected tnetstring tag %r' % tag)


def parse(msg):
    sender, conn_id, path, rest = msg.split(b' ', 3)
    length = rest.split(b':', 1)[0]
    tag = rest[len(length) + 1 + int(length):][:1]
    if tag == b'}':
        headers, rest = parse_tnetstring(rest)
        order = list(headers.keys())
    else:
        text, rest, _ = parse_netstring(rest)
        pairs = json.loads(text.decode('utf-8', 'replace'), object_pairs_hook=lambda kv: kv)
        headers = dict(pairs)
        order = [k for k, _ in pairs]
    body, _, _ = parse_netstring(rest)
    return sender.decode(), conn_id.decode(), path.decode(), headers, order, body


def send(pub, uuid, ids, data):
    idents = ' '.join(ids)
    pub.send(('%s %d:%s, ' % (uuid, len(idents), idents)).encode() + data)


def http_response(body, head_only):
    head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body)
    return head.encode() + (b'' if head_only else body)


def main():
    send_spec, recv_spec = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(send_spec)
    pub = ctx.socket(zmq.PUB)
    pub.connect(recv_spec)
    print(json.dumps({'event': 'ready'}), flush=True)
    held = []
    while True:
        sender, conn_id, path, headers, order, body = parse(pull.recv())
        method = headers.get('METHOD')
        if path == '@*':
            print(json.dumps({'event': 'notice', 'conn': conn_id, 'body': body.decode('utf-8', 'replace')}), flush=True)
            continue
        print(json.dumps({'event': 'request', 'conn': conn_id, 'path': path, 'method': method, 'keys': order}), flush=True)
        info = json.dumps({'method': method, 'path': path, 'query': headers.get('QUERY'), 'headers': headers,
                           'keys': order, 'body': body.decode('utf-8', 'replace'), 'conn': conn_id}).encode()
        response = http_response(info, method == 'HEAD')
        if path.endswith('/silent'):
            continue
        if path.endswith('/multi'):
            held.append(conn_id)
            if len(held) == 2:
                send(pub, sender, held, http_response(b'multi\n', False))
                held = []
            continue
        if path.endswith('/delay'):
            time.sleep(0.3)
        send(pub, sender, [conn_id], response)
        if path.endswith('/close'):
            send(pub, sender, [conn_id], b'')


if __name__ == '__main__':
    main()
