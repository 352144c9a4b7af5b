/// The page served at `/`: chat with the base or any adapter, streaming, or put two models'
/// answers to the same prompt side by side. One static file: no build step, no external assets.
enum Playground {
    static let html = #"""
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lora playground</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d232b; }
header { background: #1d232b; color: #fff; padding: 10px 20px; display: flex; gap: 16px; align-items: center; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
header label { font-size: 13px; opacity: .85; }
main { display: flex; gap: 16px; padding: 16px 20px; }
[hidden] { display: none !important; }
.pane { flex: 1; background: #fff; border: 1px solid #d9dde3; border-radius: 8px; display: flex; flex-direction: column; min-height: 420px; }
.pane .top { padding: 8px 12px; border-bottom: 1px solid #e6e9ee; display: flex; gap: 8px; align-items: center; }
.log { flex: 1; padding: 12px; overflow-y: auto; }
.msg { margin: 0 0 10px; white-space: pre-wrap; }
.msg.user { color: #44546a; } .msg.user::before { content: "you  "; font-weight: 600; }
.msg.assistant::before { content: "model  "; font-weight: 600; color: #1f6feb; }
.stats { font-size: 12px; color: #6a7585; }
form { display: flex; gap: 8px; padding: 0 20px 20px; }
textarea { flex: 1; font: inherit; padding: 8px; border-radius: 6px; border: 1px solid #c5ccd6; min-height: 44px; }
button { font: inherit; padding: 8px 18px; border-radius: 6px; border: 0; background: #1f6feb; color: #fff; cursor: pointer; }
select, input { font: inherit; padding: 3px 6px; }
#error { color: #b42318; padding: 0 20px; }
</style></head>
<body>
<header><h1>lora playground</h1>
<label><input type="checkbox" id="compare"> compare two models</label>
<label>max tokens <input id="max" type="number" value="128" min="1" style="width:5em"></label>
<label>temperature <input id="temp" type="number" value="0" min="0" max="2" step="0.1" style="width:4em"></label>
<label>API key <input id="key" type="password" placeholder="(none)" style="width:9em"></label>
</header>
<main>
<section class="pane" id="pane0"><div class="top"><select class="model"></select><span class="stats"></span></div><div class="log"></div></section>
<section class="pane" id="pane1" hidden><div class="top"><select class="model"></select><span class="stats"></span></div><div class="log"></div></section>
</main>
<div id="error"></div>
<form id="form"><textarea id="prompt" placeholder="Ask something (Enter sends, Shift+Enter for a new line)"></textarea><button>Send</button></form>
<script>
const panes = [0, 1].map(i => document.getElementById("pane" + i));
const histories = [[], []];
const headers = () => { const h = {"Content-Type": "application/json"}; const k = document.getElementById("key").value; if (k) h.Authorization = "Bearer " + k; return h; };
async function loadModels() {
  try {
    const r = await fetch("/v1/models", {headers: headers()});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    for (const [i, pane] of panes.entries()) {
      const select = pane.querySelector(".model");
      const keep = select.value;
      select.innerHTML = "";
      for (const m of body.data) select.add(new Option(m.parent ? m.id : m.id + " (base)", m.id));
      if (keep) select.value = keep; else if (i === 1 && body.data.length > 1) select.selectedIndex = 1;
    }
    document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = "Could not list models: " + e.message; }
}
function add(pane, role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role; div.textContent = text;
  pane.querySelector(".log").appendChild(div);
  return div;
}
async function ask(i, prompt) {
  const pane = panes[i], model = pane.querySelector(".model").value;
  histories[i].push({role: "user", content: prompt});
  add(pane, "user", prompt);
  const out = add(pane, "assistant", "");
  const stats = pane.querySelector(".stats");
  const started = performance.now(); let first = null, pieces = 0;
  const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body: JSON.stringify({
    model, messages: histories[i], stream: true, stream_options: {include_usage: true},
    max_tokens: +document.getElementById("max").value, temperature: +document.getElementById("temp").value})});
  if (!r.ok) { const body = await r.json(); out.textContent = "error: " + body.error.message; histories[i].pop(); return; }
  const reader = r.body.getReader(), decoder = new TextDecoder(); let buffer = "", usage = null;
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6));
      if (chunk.usage) usage = chunk.usage;
      const piece = chunk.choices && chunk.choices[0] && chunk.choices[0].delta.content;
      if (piece) { if (first === null) first = performance.now(); pieces++; out.textContent += piece; }
    }
  }
  histories[i].push({role: "assistant", content: out.textContent});
  const seconds = (performance.now() - started) / 1000;
  stats.textContent = `${usage ? usage.completion_tokens : pieces} tokens in ${seconds.toFixed(2)} s, first after ${first ? ((first - started) / 1000).toFixed(2) : "-"} s`;
}
document.getElementById("compare").onchange = e => { panes[1].hidden = !e.target.checked; };
// The key stays in this browser's local storage for this origin (not sent anywhere but this server's API).
const keyField = document.getElementById("key");
keyField.value = localStorage.getItem("lora-api-key") || "";
keyField.onchange = () => { localStorage.setItem("lora-api-key", keyField.value); loadModels(); };
document.getElementById("form").onsubmit = e => {
  e.preventDefault();
  const prompt = document.getElementById("prompt").value.trim();
  if (!prompt) return;
  document.getElementById("prompt").value = "";
  const active = panes[1].hidden ? [0] : [0, 1];
  Promise.all(active.map(i => ask(i, prompt).catch(err => add(panes[i], "assistant", "error: " + err.message))));
};
document.getElementById("prompt").onkeydown = e => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); document.getElementById("form").requestSubmit(); } };
// ?prompt=...&model=A&compare=B sends a prompt once the models are listed (for scripted screenshots).
const params = new URLSearchParams(location.search);
loadModels().then(() => {
  if (params.get("model")) panes[0].querySelector(".model").value = params.get("model");
  if (params.get("compare")) { document.getElementById("compare").checked = true; panes[1].hidden = false; panes[1].querySelector(".model").value = params.get("compare"); }
  if (params.get("prompt")) { document.getElementById("prompt").value = params.get("prompt"); document.getElementById("form").requestSubmit(); }
});
</script>
</body></html>
"""#
}
