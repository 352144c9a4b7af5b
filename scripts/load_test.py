#!/usr/bin/env python3
"""Bounded loopback load test of `lora serve` (standard library only).

    python3 scripts/load_test.py --port 18080 --pid SERVER_PID --adapters a,b,c,...

Sends --requests requests from --concurrency threads over the given adapters; every tenth is
malformed (bad JSON, missing or wrongly typed fields, unknown model). Good requests must return
exactly the answer the same request gets alone (greedy); bad ones a 4xx. Reports 5xx (must be
0), whether the server is still alive, and its resident memory after warm-up and at the end.
Exits 1 if anything is wrong.
"""
import argparse
import http.client
import json
import os
import queue
import sys
import threading
import time

PROMPTS = ["What is the capital of France?", "Name a colour.", "Say hello in French.", "What is 2 + 2?"]
MALFORMED = [
    ("{not json", 400),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}]}), 400),
    (json.dumps({"model": "BASE", "messages": []}), 400),
    (json.dumps({"model": "BASE", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}), 400),
    (json.dumps({"model": "no-such-adapter", "messages": [{"role": "user", "content": "hi"}]}), 404),
]


def request(port, body, stream=False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read().decode()
    connection.close()
    if response.status != 200:
        return response.status, None
    if not stream:
        return 200, json.loads(data)["choices"][0]["message"]["content"]
    text = ""
    for event in data.split("\n\n"):
        if event.startswith("data: ") and event != "data: [DONE]":
            delta = json.loads(event[6:])["choices"]
            if delta and delta[0]["delta"].get("content"):
                text += delta[0]["delta"]["content"]
    return 200, text if data.rstrip().endswith("data: [DONE]") else None


def good_body(model, prompt, stream):
    return json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8,
                       "temperature": 0, "stream": stream})


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--adapters", required=True, help="comma-separated model ids")
    parser.add_argument("--base", required=True, help="the base model's id")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    adapters = args.adapters.split(",")

    expected = {}
    for model in adapters:
        for prompt in PROMPTS:
            status, text = request(args.port, good_body(model, prompt, False))
            if status != 200:
                sys.exit(f"warm-up request for {model} failed with {status}")
            expected[(model, prompt)] = text
    rss_warm = rss_kib(args.pid)

    jobs = queue.Queue()
    for i in range(args.requests):
        jobs.put(i)
    lock = threading.Lock()
    stats = {"good": 0, "good_correct": 0, "bad": 0, "bad_4xx": 0, "5xx": 0, "errors": 0, "rss_samples_kib": []}
    mismatches = []

    def worker():
        while True:
            try:
                i = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                if i % 10 == 9:
                    body, _ = MALFORMED[(i // 10) % len(MALFORMED)]
                    status, _ = request(args.port, body.replace("BASE", args.base))
                    with lock:
                        stats["bad"] += 1
                        stats["bad_4xx"] += 400 <= status < 500
                        stats["5xx"] += status >= 500
                else:
                    model, prompt, stream = adapters[i % len(adapters)], PROMPTS[i % len(PROMPTS)], i % 3 == 0
                    status, text = request(args.port, good_body(model, prompt, stream), stream)
                    with lock:
                        stats["good"] += 1
                        stats["5xx"] += status >= 500
                        if status == 200 and text == expected[(model, prompt)]:
                            stats["good_correct"] += 1
                        else:
                            mismatches.append((i, model, prompt, status, text))
                if i % 50 == 0:
                    with lock:
                        stats["rss_samples_kib"].append(rss_kib(args.pid))
            except Exception as error:  # a dropped connection counts against the server
                with lock:
                    stats["errors"] += 1
                    mismatches.append((i, repr(error)))

    start = time.time()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats["seconds"] = round(time.time() - start, 1)
    alive = os.path.exists(f"/proc/{args.pid}")
    stats["server_alive"] = alive
    stats["rss_after_warmup_mib"] = round(rss_warm / 1024, 1)
    stats["rss_end_mib"] = round(rss_kib(args.pid) / 1024, 1) if alive else None
    stats["rss_max_mib"] = round(max(stats.pop("rss_samples_kib") + [rss_warm]) / 1024, 1)
    stats["mismatches"] = mismatches[:5]
    print(json.dumps(stats, indent=2))
    ok = alive and stats["5xx"] == 0 and stats["errors"] == 0 and stats["good_correct"] == stats["good"] and stats["bad_4xx"] == stats["bad"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
