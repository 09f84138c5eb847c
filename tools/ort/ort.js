#!/usr/bin/env node
// ONNX Runtime (onnxruntime-node, CPU) as slimserve's reference and benchmark baseline.
//   run:   runs a model once on .npy inputs, writes DIR/output_<i>.npy (model output order).
//   bench: times a model on random inputs; same JSON keys as `slimctl bench --json`.
// Install the runtime first with tools/ort/install.sh.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const USAGE = `usage:
  node tools/ort/ort.js run MODEL.onnx [--threads T] [--opt LEVEL] --out DIR IN0.npy [IN1.npy ...]
      inputs in the model's input order; writes DIR/output_<i>.npy in the model's output order
  node tools/ort/ort.js bench MODEL.onnx --batch N [--threads T] [--warmup-ms 3000] [--runs 50]
      [--shape NAME=1x3x640x640 ...] [--opt LEVEL] [--json]
      random inputs; the first dynamic dim of each input becomes N; other dynamic dims need --shape
      (a 'B' in --shape stands for N). Prints median/p90/p99 ms and items/s.
  LEVEL: disabled|basic|extended|all (default all)`;

// ---- .npy (v1.0/v2.0 read, v1.0 write; little endian, C order) ----
const DTYPES = {  // npy descr (without byte order) -> [ORT type, typed array]
  f4: ['float32', Float32Array], f8: ['float64', Float64Array], i8: ['int64', BigInt64Array],
  i4: ['int32', Int32Array], u1: ['uint8', Uint8Array], i1: ['int8', Int8Array], b1: ['bool', Uint8Array],
};
const DESCR_OF = Object.fromEntries(Object.entries(DTYPES).map(([k, [t]]) => [t, k]));

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const hstart = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', hstart, hstart + hlen);
  const descr = /'descr':\s*'([<>|=])(\w+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) throw new Error(`${file}: bad header ${header}`);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order not supported`);
  if (descr[1] === '>') throw new Error(`${file}: big endian not supported`);
  const entry = DTYPES[descr[2]];
  if (!entry) throw new Error(`${file}: dtype ${descr[2]} not supported`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const start = hstart + hlen;
  const bytes = buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length);  // aligned copy
  return new ort.Tensor(entry[0], new entry[1](bytes), dims);
}

function writeNpy(file, tensor) {
  const code = DESCR_OF[tensor.type];
  if (!code) throw new Error(`output type ${tensor.type} not supported`);
  const descr = (code[0] === 'f' || code === 'i8' || code === 'i4' ? '<' : '|') + code;
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';  // total header multiple of 64
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
    Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

// ---- arguments ----
function parseArgs(argv) {
  const opts = { positional: [], shape: {}, threads: 1, opt: 'all', warmupMs: 3000, runs: 50, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '-h' || a === '--help') { console.log(USAGE); process.exit(0); }
    else if (a === '--threads') opts.threads = parseInt(val(), 10);
    else if (a === '--batch') opts.batch = parseInt(val(), 10);
    else if (a === '--warmup-ms') opts.warmupMs = Number(val());
    else if (a === '--runs') opts.runs = parseInt(val(), 10);
    else if (a === '--out') opts.out = val();
    else if (a === '--opt') opts.opt = val();
    else if (a === '--json') opts.json = true;
    else if (a === '--shape') { const [n, s] = val().split('='); opts.shape[n] = s.split('x'); }
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.positional.push(a);
  }
  return opts;
}

function sessionOptions(opts) {
  return {
    intraOpNumThreads: opts.threads, interOpNumThreads: 1,
    graphOptimizationLevel: opts.opt, executionMode: 'sequential',
  };
}

// ---- run ----
async function run(opts) {
  const [model, ...inputs] = opts.positional;
  if (!model || !opts.out) throw new Error('run needs MODEL.onnx and --out DIR');
  const session = await ort.InferenceSession.create(model, sessionOptions(opts));
  if (inputs.length !== session.inputNames.length) {
    throw new Error(`model has ${session.inputNames.length} inputs (${session.inputNames}), got ${inputs.length} files`);
  }
  const feeds = {};
  session.inputNames.forEach((name, i) => { feeds[name] = readNpy(inputs[i]); });
  const results = await session.run(feeds);
  fs.mkdirSync(opts.out, { recursive: true });
  session.outputNames.forEach((name, i) => {
    const t = results[name];
    writeNpy(path.join(opts.out, `output_${i}.npy`), t);
    console.log(`output_${i} ${JSON.stringify(name)} ${t.type} [${t.dims.join(',')}]`);
  });
}

// ---- bench ----
function randomTensor(meta, dims) {
  const n = dims.reduce((a, b) => a * b, 1);
  const [, Arr] = DTYPES[DESCR_OF[meta.type]] || [];
  if (!Arr) throw new Error(`input ${meta.name}: type ${meta.type} not supported`);
  const data = new Arr(n);
  for (let i = 0; i < n; i++) {
    if (meta.type.startsWith('float')) data[i] = Math.random();
    else if (meta.type === 'int64') data[i] = BigInt(Math.floor(Math.random() * 10));
    else data[i] = Math.floor(Math.random() * (meta.type === 'bool' ? 2 : 10));
  }
  return new ort.Tensor(meta.type, data, dims);
}

function benchDims(meta, opts) {
  if (opts.shape[meta.name]) return opts.shape[meta.name].map((d) => (d === 'B' ? opts.batch : Number(d)));
  let batchUsed = false;
  return meta.shape.map((d) => {
    if (typeof d === 'number' && d > 0) return d;
    if (!batchUsed) { batchUsed = true; return opts.batch; }
    throw new Error(`input ${meta.name} has dynamic dims ${JSON.stringify(meta.shape)}: give --shape ${meta.name}=AxBx...`);
  });
}

function percentile(sorted, p) {  // linear interpolation, as numpy's default
  const x = (sorted.length - 1) * p;
  const lo = Math.floor(x), hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

async function bench(opts) {
  const [model] = opts.positional;
  if (!model || !(opts.batch > 0)) throw new Error('bench needs MODEL.onnx and --batch N');
  const session = await ort.InferenceSession.create(model, sessionOptions(opts));
  const feeds = {};
  for (const meta of session.inputMetadata) feeds[meta.name] = randomTensor(meta, benchDims(meta, opts));
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const warmEnd = now() + opts.warmupMs;
  do { await session.run(feeds); } while (now() < warmEnd);
  const times = [];
  for (let i = 0; i < opts.runs; i++) {
    const t0 = now();
    await session.run(feeds);
    times.push(now() - t0);
  }
  times.sort((a, b) => a - b);
  const r = {
    runtime: 'onnxruntime', model: path.basename(model), batch: opts.batch, threads: opts.threads,
    runs: opts.runs, median_ms: percentile(times, 0.5), p90_ms: percentile(times, 0.9),
    p99_ms: percentile(times, 0.99),
  };
  r.throughput_per_s = (opts.batch * 1000) / r.median_ms;
  if (opts.json) console.log(JSON.stringify(r));
  else {
    console.log(`${r.model} batch ${r.batch} threads ${r.threads} runs ${r.runs}: median ${r.median_ms.toFixed(3)} ms,` +
      ` p90 ${r.p90_ms.toFixed(3)} ms, p99 ${r.p99_ms.toFixed(3)} ms, ${r.throughput_per_s.toFixed(1)} items/s`);
  }
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2);
  if (!mode || mode === '-h' || mode === '--help') { console.log(USAGE); return; }
  const opts = parseArgs(rest);
  if (mode === 'run') await run(opts);
  else if (mode === 'bench') await bench(opts);
  else throw new Error(`unknown mode ${mode}\n${USAGE}`);
}

main().catch((e) => { console.error(`ort.js: ${e.message}`); process.exit(1); });
