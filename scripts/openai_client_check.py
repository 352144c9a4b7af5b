#!/usr/bin/env python3
"""Uses `lora serve` through the official `openai` Python client, unchanged.

    python3 scripts/openai_client_check.py http://127.0.0.1:8080/v1 [ADAPTER]

Lists the models, asks the base and ADAPTER (default: the first adapter listed) a question
with and without streaming, uses /v1/completions, `n`, logprobs, penalties and logit_bias,
`response_format` with a JSON schema (every answer must parse and validate) and json_object,
and checks that errors arrive as the client's typed exceptions. Exits 1 on the first mismatch.
"""
import json
import math
import sys
import urllib.request

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

question = [{"role": "user", "content": "Write a list of fruits."}]
choices = client.chat.completions.create(model=base, messages=question, max_tokens=12, temperature=1.0, seed=5, n=3).choices
if [c.index for c in choices] != [0, 1, 2] or len({c.message.content for c in choices}) < 2:
    sys.exit(f"n=3 gave {[c.message.content for c in choices]}")
print(f"n=3: {len({c.message.content for c in choices})} different answers")

reply = client.chat.completions.create(model=base, messages=question, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
tokens = reply.choices[0].logprobs.content
if "".join(t.token for t in tokens) != reply.choices[0].message.content or len(tokens) != reply.usage.completion_tokens:
    sys.exit("chat logprobs do not spell the answer")
if any(t.logprob > 0 or len(t.top_logprobs) != 3 or t.top_logprobs[0].logprob != t.logprob for t in tokens):
    sys.exit("greedy tokens must be their own likeliest alternative, with logprob <= 0")
print(f"chat logprobs: {[(t.token, round(t.logprob, 3)) for t in tokens[:3]]} ... p(first) = {math.exp(tokens[0].logprob):.3f}")
text = client.completions.create(model=base, prompt="The capital of France is", max_tokens=4, temperature=0, logprobs=2)
lists = text.choices[0].logprobs
if "".join(lists.tokens) != text.choices[0].text or any(len(top) != 2 for top in lists.top_logprobs):
    sys.exit("completion logprobs do not spell the text")
print(f"completion logprobs: {list(zip(lists.tokens, [round(x, 3) for x in lists.token_logprobs]))}")

plain = client.chat.completions.create(model=base, messages=question, max_tokens=32, temperature=0).choices[0].message.content
penalized = client.chat.completions.create(
    model=base, messages=question, max_tokens=32, temperature=0, frequency_penalty=2, presence_penalty=2).choices[0].message.content
if penalized == plain:
    sys.exit("penalties changed nothing")
print(f"penalties: {plain[:40]!r} -> {penalized[:40]!r}")
tokenize = urllib.request.Request(base_url.rsplit("/v1", 1)[0] + "/tokenize", data=json.dumps({"prompt": " banana"}).encode(),
                                  headers={"Content-Type": "application/json"})
banana = json.load(urllib.request.urlopen(tokenize))["tokens"][0]
biased = client.chat.completions.create(model=base, messages=question, max_tokens=3, temperature=0, logit_bias={str(banana): 100})
print(f"logit_bias +100 on token {banana}: {biased.choices[0].message.content!r}")
if biased.choices[0].message.content.count("banana") != 3:
    sys.exit("logit_bias did not force the token")

schema = {"type": "object", "properties": {
    "city": {"type": "string", "maxLength": 30}, "population": {"type": "integer"},
    "region": {"enum": ["north", "south", "east", "west"]}, "landmarks": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
    "required": ["city", "population", "region", "landmarks"]}


def valid(answer):
    return (set(answer) == set(schema["properties"]) and isinstance(answer["city"], str) and len(answer["city"]) <= 30
            and isinstance(answer["population"], int) and not isinstance(answer["population"], bool)
            and answer["region"] in schema["properties"]["region"]["enum"]
            and isinstance(answer["landmarks"], list) and len(answer["landmarks"]) <= 3 and all(isinstance(x, str) for x in answer["landmarks"]))


for seed, temperature in [(0, 0.0), (1, 0.8), (2, 1.0), (3, 1.2)]:
    reply = client.chat.completions.create(
        model=adapter, messages=[{"role": "user", "content": "Describe a French city as JSON."}], max_tokens=120, temperature=temperature, seed=seed,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    content = reply.choices[0].message.content
    if reply.choices[0].finish_reason != "stop" or not valid(json.loads(content)):
        sys.exit(f"json_schema answer {content!r} ({reply.choices[0].finish_reason}) does not validate")
    print(f"json_schema (temperature {temperature}): {content}")
reply = client.chat.completions.create(
    model=base, messages=[{"role": "user", "content": "Describe a dog as JSON."}], max_tokens=80, temperature=0, response_format={"type": "json_object"})
if reply.choices[0].finish_reason == "stop" and not isinstance(json.loads(reply.choices[0].message.content), dict):
    sys.exit("json_object answer is not an object")
print(f"json_object: {reply.choices[0].message.content!r} ({reply.choices[0].finish_reason})")
try:
    client.chat.completions.create(model=base, messages=question, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "a+"}}})
    sys.exit("an unsupported schema keyword was accepted")
except openai.BadRequestError as error:
    print(f"unsupported schema: BadRequestError {error.status_code}: {error.body['message']}")

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
