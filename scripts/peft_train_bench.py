# The PEFT peer of `lora bench train`, for ratios measured in the same window: r=8, alpha=16,
# all 7 linear modules, batch 4 x 256 of the same repeated sentence, AdamW lr 1e-4, fp32,
# 2 threads; tokens/s per step after one warm-up step, peak RSS. Run through scripts/peer_train_bench.
#   python peft_train_bench.py MODEL.gguf [STEPS]
import json, resource, sys, time
import peft
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import LoraConfig, get_peft_model

torch.set_num_threads(2)
gguf = sys.argv[1]
folder, name = gguf.rsplit("/", 1)
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
model = get_peft_model(model, config)
sentence = tokenizer("Small specialised models beat one big general model on cost and energy for most enterprise tasks. ")["input_ids"]
B, T = 4, 256
ids = torch.tensor([[sentence[(t + b) % len(sentence)] for t in range(T)] for b in range(B)])
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
model.train()
rates = []
for step in range(steps + 1):
    start = time.time()
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    elapsed = time.time() - start
    if step > 0:
        rates.append(B * T / elapsed)
rates.sort()
print(json.dumps({"peer": f"peft {peft.__version__}, torch {torch.__version__}",
                  "tokens_per_second_best": round(rates[-1], 1), "tokens_per_second_median": round(rates[len(rates) // 2], 1),
                  "peak_resident_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "loss": loss.item()}))
