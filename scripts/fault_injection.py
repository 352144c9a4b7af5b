"""Fault injection against the `lora` CLI: truncated and mutated models and adapters, bad
datasets, kill -9 during train / import / rm, damaged registries. Prints one JSON line per
category and a summary; exits 1 when anything crashed, hung, left a row without files or lost a
registered adapter.

usage: python3 scripts/fault_injection.py [--lora .build/release/lora] [--model M] [--quick]
Every command runs with a timeout (a hang is counted, never waited out); everything happens in
a temporary folder.
"""
import argparse, json, os, random, shutil, signal, sqlite3, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
parser = argparse.ArgumentParser()
parser.add_argument("--lora", default=os.path.join(ROOT, ".build/release/lora"))
parser.add_argument("--model", default=os.environ.get("LORA_MODEL", os.path.join(ROOT, "models/SmolLM2-135M-Instruct.Q4_1.gguf")))
parser.add_argument("--fixtures", default=os.environ.get("LORA_FIXTURES", os.path.join(ROOT, "../shared/fixtures/smollm2")))
parser.add_argument("--quick", action="store_true", help="fewer cases per category")
parser.add_argument("--timeout", type=float, default=90)
args = parser.parse_args()
LORA, MODEL = os.path.abspath(args.lora), os.path.abspath(args.model)
random.seed(7)
work = tempfile.mkdtemp(prefix="lora-faults-")
totals = {"runs": 0, "clear_errors": 0, "accepted": 0, "crashes": 0, "hangs": 0, "unclear_errors": 0}
problems = []


def run(argv, timeout=None, env=None):
    """(outcome, code, stderr): outcome is ok, error (a one-line 'Error: ...' message), crash or hang."""
    totals["runs"] += 1
    try:
        done = subprocess.run([LORA] + argv, capture_output=True, text=True, errors="replace", timeout=timeout or args.timeout,
                              env=dict(os.environ, **(env or {})), cwd=work)
    except subprocess.TimeoutExpired:
        totals["hangs"] += 1
        problems.append(("hang", argv))
        return "hang", None, ""
    err = done.stderr
    if done.returncode < 0 or done.returncode >= 128 or "Fatal error" in err or "Illegal instruction" in err or "Segmentation" in err:
        totals["crashes"] += 1
        problems.append(("crash", argv, done.returncode, err[-300:]))
        return "crash", done.returncode, err
    if done.returncode == 0:
        totals["accepted"] += 1
        return "ok", 0, err
    # `data validate` lists every bad line as FILE:LINE: reason on its output by design.
    listed = argv[:2] == ["data", "validate"] and any(argv[2] + ":" in line for line in done.stdout.splitlines())
    clear = ("Error:" in err or listed) and "NSCocoaErrorDomain" not in err + done.stdout and "Error Domain=" not in err
    totals["clear_errors" if clear else "unclear_errors"] += 1
    if not clear:
        problems.append(("unclear", argv, err[-300:]))
    return "error", done.returncode, err


def report(category, counts):
    print(json.dumps({"category": category, **counts}), flush=True)


def tally(outcomes):
    counts = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# MARK: - Models: truncations and byte mutations of the header (metadata, tensor directory).
model_copy = os.path.join(work, "model.gguf")
size = os.path.getsize(MODEL)
header_end = 1_800_000  # SmolLM2's metadata and tensor infos end near 1.79 MB
cuts = sorted(set([0, 3, 8, 24, 1000, 50_000, 500_000, 1_000_000, 1_700_000, 1_790_000, header_end, 5_000_000,
                   30_000_000, size // 2, size - 4096, size - 1] + [random.randrange(size) for _ in range(0 if args.quick else 9)]))
outcomes = []
with open(MODEL, "rb") as source:
    original = source.read()
for cut in cuts:
    with open(model_copy, "wb") as f:
        f.write(original[:cut])
    outcome, _, _ = run(["info", "--model", model_copy])
    outcomes.append(outcome)
    if outcome == "ok":
        problems.append(("truncated model accepted", cut))
report("model_truncations", {"cases": len(cuts), **tally(outcomes)})

with open(model_copy, "wb") as f:
    f.write(original)
outcomes = []
mutations = 20 if args.quick else 80
with open(model_copy, "r+b") as f:
    for _ in range(mutations):
        offset = random.randrange(8, header_end)
        old = original[offset]
        new = random.choice([0x00, 0xFF, 0x7F, 0x80, old ^ 0x01, old ^ 0x10, random.randrange(256)])
        f.seek(offset); f.write(bytes([new])); f.flush()
        outcome, _, err = run(["info", "--model", model_copy])
        if outcome == "ok":
            # A changed byte inside a token string or a name still loads; a generation must work too.
            outcome2, _, _ = run(["generate", "--model", model_copy, "--prompt", "Hello", "--max-tokens", "4"])
            outcome = "ok" if outcome2 == "ok" else outcome2
        outcomes.append(outcome)
        f.seek(offset); f.write(bytes([old])); f.flush()
report("model_mutations", {"cases": mutations, **tally(outcomes)})

# MARK: - Adapters: truncated or mutated safetensors, broken configs.
adapter_source = os.path.join(args.fixtures, "peft_adapter")
outcomes = []
cases = 0


def adapter_case(mutate):
    global cases
    cases += 1
    folder = os.path.join(work, f"adapter-{cases}")
    shutil.copytree(adapter_source, folder)
    mutate(folder)
    outcome, _, _ = run(["generate", "--model", MODEL, "--adapter", folder, "--prompt", "Hi", "--max-tokens", "2"])
    outcomes.append(outcome)
    shutil.rmtree(folder)


weights_name, config_name = "adapter_model.safetensors", "adapter_config.json"
weights = open(os.path.join(adapter_source, weights_name), "rb").read()
for cut in [0, 4, 8, 100, 1000, len(weights) // 3, len(weights) - 1] + ([] if args.quick else [random.randrange(len(weights)) for _ in range(8)]):
    adapter_case(lambda folder, cut=cut: open(os.path.join(folder, weights_name), "wb").write(weights[:cut]))
header_length = int.from_bytes(weights[:8], "little")
for _ in range(10 if args.quick else 30):
    offset = random.randrange(0, 8 + header_length)
    value = random.randrange(256)

    def mutate(folder, offset=offset, value=value):
        data = bytearray(weights)
        data[offset] = value
        open(os.path.join(folder, weights_name), "wb").write(bytes(data))
    adapter_case(mutate)
nan = bytearray(weights)
nan[8 + header_length + 16:8 + header_length + 20] = bytes([0, 0, 0xC0, 0x7F])
adapter_case(lambda folder: open(os.path.join(folder, weights_name), "wb").write(bytes(nan)))
config = json.load(open(os.path.join(adapter_source, config_name)))
for change in [{"r": 0}, {"r": 1 << 62}, {"r": "eight"}, {"lora_alpha": None}, {"target_modules": ["nonsense"]},
               {"target_modules": "q_proj|v_proj"}, {"peft_type": "IA3"}, {"use_dora": True}, {"layers_to_transform": [99]},
               {"layers_to_transform": [-1]}, {"bias": "all"}, {"modules_to_save": ["lm_head"]}, {"r": 4}]:
    adapter_case(lambda folder, change=change: json.dump({**config, **change}, open(os.path.join(folder, config_name), "w")))
for text in ["", "{", "[]", "null", '{"r": 8}', "\xff\xfe"]:
    adapter_case(lambda folder, text=text: open(os.path.join(folder, config_name), "w", errors="surrogateescape").write(text))
adapter_case(lambda folder: os.remove(os.path.join(folder, weights_name)))
adapter_case(lambda folder: os.remove(os.path.join(folder, config_name)))
report("adapters", {"cases": cases, **tally(outcomes)})

# MARK: - Datasets: every bad shape, and valid-but-awkward ones that must work.
bad = {
    "not_json": b"{not json\n", "array": b'["a"]\n', "number_text": b'{"text": 5}\n', "empty_text": b'{"text": ""}\n',
    "prompt_only": b'{"prompt": "a"}\n', "no_assistant": b'{"messages": [{"role": "user", "content": "q"}]}\n',
    "bad_role": b'{"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
    "mixed": b'{"text": "a"}\n{"prompt": "p", "completion": "c"}\n', "empty_file": b"", "blank_lines": b"\n\n\n",
    "bad_utf8_line3": b'{"text": "a"}\n{"text": "b"}\n{"text": "\xc3\x28"}\n', "binary": bytes(random.randrange(256) for _ in range(4096)),
    "nul_bytes": b'{"text": "a\x00b"}\n\x00\x00\n', "deep_nesting": b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "huge_line": b'{"text": "' + b"a" * (5 << 20) + b'"}\n', "messages_not_array": b'{"messages": "hi"}\n',
    "content_number": b'{"messages": [{"role": "user", "content": 1}, {"role": "assistant", "content": "a"}]}\n',
    "truncated_json": b'{"prompt": "a", "completion": "b"\n', "lone_surrogate": b'{"text": "\\ud800"}\n',
    "duplicate_keys": b'{"text": "a", "text": 5}\n',
}
awkward = {
    "crlf": b'{"text": "a"}\r\n{"text": "b"}\r\n', "bom": b'\xef\xbb\xbf{"text": "a"}\n', "no_final_newline": b'{"text": "a"}',
    "long_word": b'{"prompt": "x", "completion": "' + b"a" * 100_000 + b'"}\n', "emoji": '{"text": "😀👍🏽 ok"}\n'.encode(),
    "control_tokens": b'{"text": "<|im_start|>user\\nhi<|im_end|>"}\n', "tabs": b'{"text":\t"a"}\n',
}
outcomes = {"bad": [], "awkward": []}
for kind, cases_ in [("bad", bad), ("awkward", awkward)]:
    for name, content in cases_.items():
        path = os.path.join(work, f"{kind}-{name}.jsonl")
        open(path, "wb").write(content)
        for argv in (["data", "validate", path], ["data", "stats", path, "--model", MODEL],
                     ["train", "--model", MODEL, "--data", path, "--out", os.path.join(work, f"run-{name}"), "--no-register",
                      "--iters", "1", "--batch-size", "1", "--max-seq-length", "64", "--steps-per-eval", "1000"]):
            outcome, code, err = run(argv, timeout=180)
            outcomes[kind].append(outcome)
            if kind == "bad" and outcome == "ok" and argv[0] != "data":
                problems.append(("bad dataset trained", name))
            if kind == "awkward" and outcome != "ok":
                problems.append(("valid dataset refused", name, argv[:2], err[-200:]))
report("datasets_bad", {"files": len(bad), **tally(outcomes["bad"])})
report("datasets_awkward", {"files": len(awkward), **tally(outcomes["awkward"])})

# MARK: - Registries: kill -9 during train, import and rm; damaged registry files.
store = os.path.join(work, "store")
dataset = os.path.join(ROOT, "datasets/dates")


def rows_and_folders(root):
    """Registered versions, and rows whose files are missing or changed (via lora adapters verify)."""
    try:
        db = sqlite3.connect(os.path.join(root, "registry.sqlite"))
        rows = [r[0] for r in db.execute("SELECT path FROM adapter")]
        db.close()
    except sqlite3.DatabaseError:
        return [], [], "registry unreadable"
    broken = [p for p in rows if not os.path.exists(os.path.join(root, p, "adapter_model.safetensors"))]
    outcome, _, out = run(["adapters", "verify", "--store", root])
    return rows, broken, outcome


kills = {"train": 0, "import": 0, "rm": 0}
rows_without_files = 0
lost = 0


def killed(argv, delay):
    totals["runs"] += 1
    process = subprocess.Popen([LORA] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=work)
    time.sleep(delay)
    was_running = process.poll() is None
    if was_running:
        process.send_signal(signal.SIGKILL)
    process.wait()
    return was_running


train = ["train", "--model", MODEL, "--data", dataset, "--store", store, "--iters", "6", "--batch-size", "2",
         "--max-seq-length", "64", "--save-every", "2", "--steps-per-eval", "1000"]
outcome, _, err = run(train + ["--name", "base-adapter"], timeout=600)
if outcome != "ok":
    problems.append(("could not train the adapter the registry tests start from", err[-300:]))
export = os.path.join(work, "exported")
run(["adapters", "export", "base-adapter", "--to", export, "--store", store])
for attempt in range(3 if args.quick else 8):
    if killed(train + ["--name", f"killed-{attempt}"], 1.0 + attempt * 0.7):
        kills["train"] += 1
for attempt in range(6 if args.quick else 20):
    if killed(["adapters", "import", export, "--store", store], 0.01 + attempt * 0.012):
        kills["import"] += 1
registered_before = None
for attempt in range(6 if args.quick else 20):
    rows, _, _ = rows_and_folders(store)
    victims = [p for p in rows if p.startswith("base-adapter/") and p != "base-adapter/1"]
    if not victims:
        run(["adapters", "import", export, "--store", store])
        continue
    victim = victims[-1].replace("/", "@")
    if killed(["adapters", "rm", victim, "--store", store], 0.005 + attempt * 0.006):
        kills["rm"] += 1
rows, broken, verify = rows_and_folders(store)
rows_without_files += len(broken)
before_gc = set(rows)
run(["adapters", "gc", "--store", store])
rows_after, broken_after, _ = rows_and_folders(store)
lost += len(before_gc - set(rows_after))
# The store opened once more by the CLI first (it marks runs whose process is gone).
run(["adapters", "list", "--store", store])
db = sqlite3.connect(os.path.join(store, "registry.sqlite"))
running = db.execute("SELECT COUNT(*) FROM trainingRun WHERE status = 'running'").fetchone()[0]
db.close()
report("kills", {**kills, "rows": len(rows), "rows_without_files": len(broken), "verify": verify,
                 "registered_lost_by_gc": lost, "runs_left_running": running})

versions_before = sorted(os.path.join(d, v) for d in os.listdir(store) if not d.startswith(".") and os.path.isdir(os.path.join(store, d))
                         for v in os.listdir(os.path.join(store, d)) if v.isdigit())
registry = os.path.join(store, "registry.sqlite")
saved = os.path.join(work, "registry.saved")
for suffix in ["", "-wal", "-shm"]:
    if os.path.exists(registry + suffix):
        shutil.copy(registry + suffix, saved + suffix)
damage = {"missing": lambda: None, "empty": lambda: open(registry, "wb").close(),
          "garbage": lambda: open(registry, "wb").write(bytes(random.randrange(256) for _ in range(8192))),
          "truncated": lambda: open(registry, "wb").write(open(saved, "rb").read()[:2048])}
outcomes = []
for name, make in damage.items():
    for suffix in ["", "-wal", "-shm"]:
        if os.path.exists(registry + suffix):
            os.remove(registry + suffix)
    make()
    for argv in (["adapters", "list", "--store", store], ["adapters", "gc", "--store", store]):
        outcome, _, _ = run(argv)
        outcomes.append(outcome)
    versions = sorted(os.path.join(d, v) for d in os.listdir(store) if not d.startswith(".") and os.path.isdir(os.path.join(store, d))
                      for v in os.listdir(os.path.join(store, d)) if v.isdigit())
    deleted = len(set(versions_before) - set(versions))
    lost += deleted
    if deleted:
        problems.append((f"{name} registry: gc deleted {deleted} versions",))
rebuilt, _, _ = run(["adapters", "rebuild", "--store", store, "--model", MODEL])
rows_rebuilt, broken_rebuilt, _ = rows_and_folders(store)
report("damaged_registry", {"cases": len(damage), **tally(outcomes), "versions_deleted": lost, "rebuild": rebuilt,
                            "rows_after_rebuild": len(rows_rebuilt), "versions_on_disk": len(versions_before)})

summary = {**totals, "rows_without_files": rows_without_files, "registered_lost": lost}
print(json.dumps({"summary": summary}), flush=True)
for problem in problems[:40]:
    print("problem:", problem, file=sys.stderr)
shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if totals["crashes"] or totals["hangs"] or rows_without_files or lost or totals["unclear_errors"] else 0)
