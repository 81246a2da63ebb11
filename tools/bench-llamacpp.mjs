// llama.cpp's side of tools/bench-llamacpp.sh: the measurement `blyan bench` makes, through
// node-llama-cpp's prebuilt CPU libraries. Prefill = one batch of N random ids at position 0
// with the logits of the last position; decode = G single-token steps, each feeding back the
// greedy (argmax) token. Prints one JSON line. Run from the folder where node-llama-cpp is
// installed (the script copies it there).
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import {readFileSync} from "node:fs";

const args = Object.fromEntries(process.argv.slice(2).map(a => a.replace(/^--/, "").split("=")));
const modelPath = args.model;
const nThreads = Number(args.threads ?? 2);
const nPrompt = Number(args["prompt-tokens"] ?? 128);
const nGen = Number(args["gen-tokens"] ?? 32);

const llama = await getLlama({gpu: false, build: "never", maxThreads: nThreads,
    logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0, useMmap: true});
const ctx = await model.createContext({contextSize: nPrompt + nGen + 64,
    batchSize: Math.max(nPrompt, 128), sequences: 1, threads: {ideal: nThreads, min: nThreads}});
const seq = ctx.getSequence();
// Which ggml CPU variant the loader picked (it dlopens one of several builds).
const variant = (readFileSync("/proc/self/maps", "utf8").match(/libggml-cpu-([\w-]+)\.so/) ?? [])[1];

let seed = 12345;
const ids = n => Array.from({length: n}, () => 1000 + ((seed = (seed * 1103515245 + 12345) % 2147483648) % 100000));
async function prefill(tokens) {
    const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, {generateNext: {token: true}}] : t));
    return (await seq.controlledEvaluate(input))[tokens.length - 1].next.token;
}
const cpuSeconds = (a, b) => (b.user + b.system - a.user - a.system) / 1e6;
const seconds = (a, b) => Number(b - a) / 1e9;

await prefill(ids(16));   // warm-up: fault the weights in, start the threads
await seq.clearHistory();
const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
let tok = await prefill(ids(nPrompt));
const t1 = process.hrtime.bigint(), c1 = process.cpuUsage();
for (let i = 0; i < nGen; i++)
    tok = (await seq.controlledEvaluate([[tok, {generateNext: {token: true}}]]))[0].next.token;
const t2 = process.hrtime.bigint(), c2 = process.cpuUsage();

const prefillShare = cpuSeconds(c0, c1) / (seconds(t0, t1) * nThreads);
const prefillRate = nPrompt / seconds(t0, t1);
console.log(JSON.stringify({
    engine: "llama.cpp", ggml_cpu: variant ?? "unknown", threads: ctx.currentThreads,
    batch: ctx.batchSize, prompt_tokens: nPrompt, gen_tokens: nGen,
    prefill_tok_s: +prefillRate.toFixed(2), prefill_cpu_share: +prefillShare.toFixed(3),
    prefill_tok_s_full_cores: +(prefillRate / prefillShare).toFixed(2),
    decode_tok_s: +(nGen / seconds(t1, t2)).toFixed(2),
    decode_cpu_share: +(cpuSeconds(c1, c2) / (seconds(t1, t2) * nThreads)).toFixed(3),
}));
await ctx.dispose();
await model.dispose();
await llama.dispose();
