#!/usr/bin/env python3
"""How long prompts share the server with running streams (standard library only, loopback).

    python3 scripts/fairness_check.py --port 18080 [--streams 8] [--long-tokens 3000] [--rounds 3]

--streams clients stream greedy completions one after another for the whole run. After a
warm-up, each round sends a prompt of about --long-tokens tokens, then a 2-token request
--short-delay seconds later, and waits for both. Prints one JSON object: the streams'
inter-token latency (p50/p99, ms) while no long prompt is in flight and while one is, the short
requests' time to first token, the long prompts' time to first token, and the short request's
time to first token with nothing else running. Every loop is bounded by --max-seconds.
"""
import argparse
import http.client
import json
import sys
import threading
import time

FILLER = ("The committee met on a grey morning to review the annual report, line by line, "
          "and every member raised a question about the figures. ")


def post(port, path, body, timeout):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return connection, connection.getresponse()


def stream(port, body, timeout, on_token=None):
    """Streams a completion; returns (seconds to the first text, [arrival time of each text event])."""
    sent = time.monotonic()
    connection, response = post(port, "/v1/completions", dict(body, stream=True), timeout)
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:200]!r}")
    arrivals = []
    for line in response:
        line = line.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        choices = json.loads(line[6:]).get("choices") or []
        if choices and choices[0].get("text"):
            now = time.monotonic()
            arrivals.append(now)
            if on_token:
                on_token(now)
    connection.close()
    return (arrivals[0] - sent if arrivals else None), arrivals


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(len(ordered) * p + 0.999999) - 1))], 1)


def long_prompt(port, tokens):
    """Filler text of about `tokens` tokens, measured with the server's /tokenize."""
    connection, response = post(port, "/tokenize", {"prompt": FILLER}, 30)
    per_piece = json.loads(response.read())["count"]
    connection.close()
    return FILLER * max(1, tokens // per_piece)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="base")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--long-tokens", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short-delay", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=600)
    args = parser.parse_args()
    deadline = time.monotonic() + args.max_seconds
    prompt = long_prompt(args.port, args.long_tokens)

    short_body = {"model": args.model, "prompt": "Say yes.", "max_tokens": 2, "temperature": 0}
    alone = [stream(args.port, short_body, 60)[0] for _ in range(3)]

    stop = threading.Event()
    lock = threading.Lock()
    gaps = []  # (time of the later token, gap in ms)

    def client(c):
        body = {"model": args.model, "prompt": f"Story {c}: once upon a time in a small town", "max_tokens": 64, "temperature": 0}
        while not stop.is_set() and time.monotonic() < deadline:
            last = [None]

            def on_token(now):
                if last[0] is not None:
                    with lock:
                        gaps.append((now, (now - last[0]) * 1000))
                last[0] = now
            stream(args.port, body, 600, on_token)

    clients = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(args.streams)]
    for t in clients:
        t.start()
    time.sleep(3)
    windows, short_ttft, long_ttft = [], [], []
    for _ in range(args.rounds):
        if time.monotonic() > deadline:
            break
        result = {}

        def send_long():
            start = time.monotonic()
            result["long"] = stream(args.port, {"model": args.model, "prompt": prompt, "max_tokens": 1, "temperature": 0}, 600)[0]
            result["end"] = time.monotonic()
            result["start"] = start
        worker = threading.Thread(target=send_long)
        worker.start()
        time.sleep(args.short_delay)
        short_ttft.append(stream(args.port, short_body, 600)[0])
        worker.join(timeout=max(1, deadline - time.monotonic()))
        if "long" not in result:
            sys.exit("a long prompt did not finish before --max-seconds")
        long_ttft.append(result["long"])
        windows.append((result["start"], result["end"]))
        time.sleep(2)
    stop.set()
    for t in clients:
        t.join(timeout=120)

    def inside(t):
        return any(start <= t <= end for start, end in windows)
    during = [g for t, g in gaps if inside(t)]
    outside = [g for t, g in gaps if not inside(t)]
    ms = lambda values: [round(v * 1000, 1) for v in values if v is not None]
    print(json.dumps({
        "streams": args.streams, "long_prompt_tokens": args.long_tokens, "rounds": len(windows),
        "itl_ms_without_long_prompt": {"p50": percentile(outside, 0.5), "p99": percentile(outside, 0.99), "count": len(outside)},
        "itl_ms_during_long_prompt": {"p50": percentile(during, 0.5), "p99": percentile(during, 0.99), "max": round(max(during), 1) if during else None, "count": len(during)},
        "short_request_ttft_ms": ms(short_ttft), "short_request_alone_ttft_ms": ms(alone), "long_prompt_ttft_ms": ms(long_ttft),
    }))


if __name__ == "__main__":
    main()
