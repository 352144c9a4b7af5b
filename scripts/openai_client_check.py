#!/usr/bin/env python3
"""Uses `lora serve` through the official `openai` Python client, unchanged.

    python3 scripts/openai_client_check.py http://127.0.0.1:8080/v1 [ADAPTER]

Lists the models, asks the base and ADAPTER (default: the first adapter listed) a question
with and without streaming, uses /v1/completions, and checks that errors arrive as the client's
typed exceptions. Exits 1 on the first mismatch.
"""
import sys

import openai

base_url = sys.argv[1]
client = openai.OpenAI(base_url=base_url, api_key="unused")

models = client.models.list().data
ids = [m.id for m in models]
base = next(m.id for m in models if not getattr(m, "parent", None))
adapter = sys.argv[2] if len(sys.argv) > 2 else next((i for i in ids if i != base), base)
print(f"models: {ids}")

for model in dict.fromkeys([base, adapter]):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    reply = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0)
    text = reply.choices[0].message.content
    print(f"{model}: {text!r} ({reply.usage.prompt_tokens} prompt + {reply.usage.completion_tokens} completion tokens, finish {reply.choices[0].finish_reason})")
    pieces = []
    for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    if "".join(pieces) != text:
        sys.exit(f"streamed text {''.join(pieces)!r} differs from {text!r}")
    print(f"{model}: streamed the same text in {len(pieces)} chunks")

completion = client.completions.create(model=base, prompt="The capital of France is", max_tokens=5, temperature=0)
print(f"completion: {completion.choices[0].text!r}")

try:
    client.chat.completions.create(model="no-such-adapter", messages=[{"role": "user", "content": "hi"}])
    sys.exit("an unknown model was accepted")
except openai.NotFoundError as error:
    print(f"unknown model: NotFoundError {error.status_code}: {error.body['message']}")
try:
    client.chat.completions.create(model=base, messages=[], max_tokens=5)
    sys.exit("empty messages were accepted")
except openai.BadRequestError as error:
    print(f"empty messages: BadRequestError {error.status_code}: {error.body['message']}")
print("openai client: ok")
