"""Benchmark: one attention layer, chunked linear attention (each PE) vs causal SDPA with RoPE, on CPU.

    python benchmarks/attention.py --quick             # a short run (a few minutes)
    python benchmarks/attention.py --out bench.md      # the full grid, markdown saved to bench.md

Every point runs in its own subprocess (``--worker``) so that its peak memory can be read from
``resource.getrusage(...).ru_maxrss``: we report peak RSS during one call minus the RSS just before
it (inputs and weights already allocated). That is the process high-water mark, so it includes
allocator slack and is approximate (±a few MB), but it does see torch's allocations, which tracemalloc
would not. Times come from workers that run all methods of a point round-robin (so bursts of load from
other processes hit all of them alike) and report medians of >= 3 calls after a warm-up, with
``torch.set_num_threads(2)``, fp32, ``torch.inference_mode()``. Each point gets ``--repeats`` such
workers (default 3, a few seconds apart) and every method keeps its fastest median: on a shared machine,
load from other tenants comes in spells longer than one worker, and it only ever adds time, so the
minimum is the best estimate of each method's own cost (the advice of Python's ``timeit``). Each method's output is checked
against an O(N²) reference on a prefix first (causal: a prefix of the output depends only on a prefix
of the input).

The speed targets compare attention with attention: `attn` is everything that differs between the two
layers (PE + φ + linear attention vs RoPE + SDPA); the q/k/v/out projections are the same matmuls in
both and are reported with them in the `layer` columns. The large torch.mm that the GFLOP/s line is
measured against runs round-robin in the same worker as the layer it is compared with.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

HEADS = 4
MM_SIZE = 2048  # the reference torch.mm is MM_SIZE² x MM_SIZE²


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timeit(fn, min_reps: int = 3, budget_s: float = 2.0) -> float:
    """Median seconds of >= min_reps calls (more while within budget_s)."""
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < 25):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def _layer(method: str, d_model: int):
    from harmonize.model.transformer import ModelConfig, SelfAttention

    if method == "sdpa":
        cfg = ModelConfig(d_model=d_model, n_heads=HEADS, pe="rope_a", position_dim=1, attention="softmax")
    else:
        pe, _, fmap = method.partition("+")
        cfg = ModelConfig(d_model=d_model, n_heads=HEADS, pe=pe, position_dim=1, feature_map=fmap or "elu")
    return SelfAttention(cfg).eval()


def _reference(layer, x, pos):
    """O(N²) reference of the same layer: masked quadratic (linear) or explicit softmax."""
    from harmonize.model.attention import quadratic_attention, softmax_attention

    B, T, d = x.shape
    q, k, v = (t.transpose(1, 2) for t in layer._project(x, pos))
    if layer.cfg.attention == "softmax":
        y = softmax_attention(q, k, v, True, key_padding_mask=x.new_ones(B, T, dtype=bool))
    else:
        y = quadratic_attention(layer.feature_map(q, True), layer.feature_map(k, False), v, True)
    return layer.proj(y.transpose(1, 2).reshape(B, T, d))


def _inputs(B: int, N: int, d: int):
    import torch

    torch.manual_seed(0)
    x = torch.randn(B, N, d)
    return x, torch.arange(N, dtype=torch.float32)[None, :, None].expand(B, N, 1).contiguous()


def worker_memory(p: dict) -> dict:
    """Check one method against its reference on a prefix, then peak RSS delta of one forward."""
    import torch

    layer = _layer(p["method"], p["d"])
    x, pos = _inputs(p["B"], p["N"], p["d"])
    with torch.inference_mode():
        P = min(p["N"], 512)
        err = (layer(x[:, :P], pos[:, :P]) - _reference(layer, x[:, :P], pos[:, :P])).abs().max().item()
        assert err < 1e-3, f"{p}: output differs from the O(N²) reference by {err}"
        before = _rss_mb()
        layer(x, pos)
        return {"mem_mb": _peak_mb() - before, "err": err}


def worker_time(p: dict) -> dict:
    """Median ms of every method, interleaved round-robin so that load from other processes hits all
    methods alike: whole layer (projections + PE + φ + attention) and attention only (PE + φ + core)."""
    import torch

    layers = {m: _layer(m, p["d"]) for m in p["methods"]}
    x, pos = _inputs(p["B"], p["N"], p["d"])
    times = {f"{m}/{part}": [] for m in layers for part in ("layer", "attn")}
    with torch.inference_mode():
        qkv = {m: lay.qkv(x).unflatten(-1, (3, HEADS, -1)).unbind(-3) for m, lay in layers.items()}
        fns = {}
        for m, lay in layers.items():
            q, k, v = qkv[m]
            fns[f"{m}/layer"] = lambda lay=lay: lay(x, pos)
            fns[f"{m}/attn"] = lambda lay=lay, q=q, k=k, v=v: lay.attend(*lay.encode(q, k, pos), v)
        if p.get("mm"):
            a, b = torch.randn(MM_SIZE, MM_SIZE), torch.randn(MM_SIZE, MM_SIZE)
            fns["mm"] = lambda: a @ b
            times["mm"] = []
        for fn in fns.values():
            fn()  # warm-up
        start = time.perf_counter()
        while (len(times[next(iter(times))]) < 3
               or (time.perf_counter() - start < p["budget_s"] and len(times[next(iter(times))]) < 15)):
            for name, fn in fns.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: sorted(ts)[len(ts) // 2] * 1e3 for name, ts in times.items()}


def worker_core(p: dict) -> dict:
    """The chunked linear-attention core alone (φ features given) and a large torch.mm, round-robin."""
    import torch

    from harmonize.model.attention import linear_attention

    B, N, F_, M = p["B"], p["N"], p["F"], p["M"]
    q, k = torch.rand(B, HEADS, N, F_), torch.rand(B, HEADS, N, F_)
    v = torch.randn(B, HEADS, N, M)
    a, b = torch.randn(MM_SIZE, MM_SIZE), torch.randn(MM_SIZE, MM_SIZE)
    core, mm = [], []
    with torch.inference_mode():
        for _ in range(9):
            for fn, out in ((lambda: linear_attention(q, k, v, chunk_size=p["C"]), core), (lambda: a @ b, mm)):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
    core, mm = sorted(core)[4], sorted(mm)[4]
    return {"core_ms": core * 1e3, "mm_gflops": 2 * MM_SIZE**3 / mm / 1e9}


def worker_generate(p: dict) -> dict:
    """Per-token time of one layer at cache position N: recurrent state vs preallocated KV cache."""
    import torch
    import torch.nn.functional as F

    from harmonize.model.attention import LinearState

    torch.manual_seed(0)
    B, N, d, steps = p["B"], p["N"], p["d"], 32
    layer = _layer("sdpa" if p["method"] == "kvcache" else p["method"], d)
    D = d // HEADS
    x = torch.randn(B, steps, d)
    pos = torch.arange(N, N + steps, dtype=torch.float32)[None, :, None].expand(B, steps, 1).contiguous()
    with torch.inference_mode():
        before = _rss_mb()
        if p["method"] == "kvcache":
            cache_k, cache_v = torch.randn(B, HEADS, N + steps, D), torch.randn(B, HEADS, N + steps, D)

            def step(t):
                q, k, v = layer._project(x[:, t:t + 1], pos[:, t:t + 1])  # [B,1,H,D], RoPE applied
                cache_k[:, :, N + t] = k[:, 0]
                cache_v[:, :, N + t] = v[:, 0]
                y = F.scaled_dot_product_attention(q.transpose(1, 2), cache_k[:, :, :N + t + 1],
                                                   cache_v[:, :, :N + t + 1])
                return layer.proj(y.transpose(1, 2).reshape(B, 1, d))
        else:
            feat = layer.feature_map.out_dim
            state = LinearState(torch.rand(B, HEADS, feat, D + 1) * N)  # as if N tokens were seen

            def step(t):
                return layer.step(x[:, t:t + 1], pos[:, t:t + 1], state)[0]

        step(0)
        mem = _peak_mb() - before
        times = []
        for t in range(1, steps):
            t0 = time.perf_counter()
            step(t)
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"us": times[len(times) // 2] * 1e6, "mem_mb": mem}


def check_generation() -> None:
    """Decoding paths agree with the full passes on a short sequence (run once before timing)."""
    import torch
    import torch.nn.functional as F

    from harmonize.model.attention import LinearState

    torch.manual_seed(0)
    layer, sdpa = _layer("ropepool", 64), _layer("sdpa", 64)
    x, pos = torch.randn(2, 40, 64), torch.arange(40.0)[None, :, None].expand(2, 40, 1)
    with torch.inference_mode():
        state = LinearState.zeros(2, HEADS, layer.feature_map.out_dim, 16)
        outs = []
        for t in range(40):
            y, state = layer.step(x[:, t:t + 1], pos[:, t:t + 1], state)
            outs.append(y)
        assert (torch.cat(outs, 1) - layer(x, pos)).abs().max() < 1e-4, "recurrent decoding != parallel pass"
        q, k, v = (t.transpose(1, 2) for t in sdpa._project(x, pos))  # KV cache: query t sees keys <= t
        last = F.scaled_dot_product_attention(q[:, :, -1:], k, v).transpose(1, 2).flatten(-2)
        assert (sdpa.proj(last)[:, 0] - sdpa(x, pos)[:, -1]).abs().max() < 1e-4, "KV-cache step != full pass"


def run_worker(kind: str, params: dict, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps({"kind": kind, "threads": threads, **params})]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"worker {params} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def core_flops(B: int, N: int, d: int, feat: int, C: int = 64, block: int = 16) -> float:
    """Chunked causal attention as executed, per head and step: KᵀV and Q·S (2·2FM), the full C×C
    score and A·V blocks (2C(F+M)), the denominator (2F + C) and the prefix matmul over chunks (2·m·F·M/C)."""
    M = d // HEADS
    m = min(block, N // C)
    return B * HEADS * N * (4 * feat * M + 2 * C * (feat + M) + 2 * feat + C + 2 * m * feat * M / C)


def layer_flops(B: int, N: int, d: int, feat: int, C: int = 64) -> float:
    """Projections (q, k, v and out: 8·B·N·d²) + the chunked attention."""
    return 8 * B * N * d * d + core_flops(B, N, d, feat, C)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a few points only")
    ap.add_argument("--out", help="also write the markdown tables to this file")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timing workers per point; the fastest median counts")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        p = json.loads(args.worker)
        torch.set_num_threads(p["threads"])
        fn = {"memory": worker_memory, "time": worker_time, "core": worker_core,
              "generate": worker_generate}[p["kind"]]
        print(json.dumps(fn(p)))
        return

    check_generation()
    linear = ["none", "rope_a", "fstripe1", "fstripe", "ropepool", "ropepool+favor"]
    if args.quick:
        grid, Ns, gen_Ns = [(1, 256)], [256, 1024, 4096], [256, 4096]
        linear = ["none", "ropepool", "ropepool+favor"]
    else:
        grid, Ns, gen_Ns = [(1, 256), (8, 256), (1, 512), (8, 512)], [256, 512, 1024, 2048, 4096, 8192], \
            [256, 1024, 4096, 16384]
    lines = [f"Threads: {args.threads}. Fastest of {args.repeats} workers' median ms of the whole layer "
             "(projections + PE + φ + attention), "
             "peak RSS delta MB in brackets; `attn` = PE + φ + attention only (no projections), ms.",
             "speedup = SDPA / linear ropepool; overhead = (ropepool − none) / ropepool, layer times.", ""]
    head = ("| B | d | N | SDPA+RoPE | " + " | ".join(f"lin {m}" for m in linear)
            + " | attn SDPA+RoPE | attn ropepool | speedup layer | speedup attn | ropepool overhead |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    results = {}
    points = [(B, d, N) for B, d in grid for N in Ns] + ([] if args.quick else [(1, 256, 16384)])
    gflops_point = (1, 256, 4096)  # B, d, N of the GFLOP/s line (ropepool + elu: F = D/2)
    for B, d, N in points:
        methods = ["sdpa"] + (linear if N <= 8192 else ["none", "ropepool"])
        pt = {"B": B, "N": N, "d": d}
        mem = {m: run_worker("memory", pt | {"method": m}, args.threads)["mem_mb"] for m in methods}
        runs = [run_worker("time", pt | {"methods": methods, "budget_s": 2.0 if args.quick else 4.0,
                                         "mm": (B, d, N) == gflops_point}, args.threads)
                for _ in range(args.repeats)]
        t = {name: min(r[name] for r in runs) for name in runs[0]}
        results[(B, d, N)] = t
        cells = [f"{t[m + '/layer']:.1f} ({mem[m]:.0f})" if m in mem else "-" for m in ["sdpa"] + linear]
        sp_layer = t["sdpa/layer"] / t["ropepool/layer"]
        sp_attn = t["sdpa/attn"] / t["ropepool/attn"]
        over = (t["ropepool/layer"] - t["none/layer"]) / t["ropepool/layer"]
        lines.append(f"| {B} | {d} | {N} | " + " | ".join(cells)
                     + f" | {t['sdpa/attn']:.2f} | {t['ropepool/attn']:.2f}"
                     + f" | {sp_layer:.1f}x | {sp_attn:.1f}x | {over:+.0%} |")
        print(lines[-1], flush=True)

    B, d, N = gflops_point
    F_ = d // HEADS // 2
    t = results[gflops_point]
    core = run_worker("core", {"B": B, "N": N, "F": F_, "M": d // HEADS, "C": 64}, args.threads)
    lay_gf = layer_flops(B, N, d, F_) / t["ropepool/layer"] / 1e6
    core_gf = core_flops(B, N, d, F_) / core["core_ms"] / 1e6
    mm, mm_core = 2 * MM_SIZE**3 / t["mm"] / 1e6, core["mm_gflops"]
    lines += ["", f"GFLOP/s at B={B}, d={d}, N={N} (ropepool, elu), each against a {MM_SIZE}² torch.mm timed "
              f"round-robin in the same worker: layer (projections + chunked attention FLOPs) {lay_gf:.1f} vs mm "
              f"{mm:.1f} = {lay_gf / mm:.0%}; chunked core alone ({core['core_ms']:.2f} ms) {core_gf:.1f} vs mm "
              f"{mm_core:.1f} = {core_gf / mm_core:.0%}."]
    print(lines[-1], flush=True)
    at = {n: results[(1, 256, n)] for n in (1024, 4096) if (1, 256, n) in results}
    over = max((r["ropepool/layer"] - r["none/layer"]) / r["ropepool/layer"] for r in results.values())
    lines += ["", "Targets (B=1, d=256): "
              + "; ".join(f"attn speedup at N={n} {r['sdpa/attn'] / r['ropepool/attn']:.1f}x (target "
                          f"{3 if n == 1024 else 8}x)" for n, r in at.items())
              + f"; largest ropepool overhead {over:+.0%} (target <= +15%); layer {lay_gf / mm:.0%} of mm "
              "(target >= 30%); generation memory: the table below."]
    print(lines[-1], flush=True)

    lines += ["", "Generation, one layer per token at cache position N (B=1, d=256): median µs (peak RSS delta MB)",
              "", "| N | KV cache + SDPA (RoPE) | recurrent ropepool | recurrent ropepool+favor |", "|---|---|---|---|"]
    for N in gen_Ns:
        g = {m: run_worker("generate", {"method": m, "B": 1, "N": N, "d": 256}, args.threads)
             for m in ("kvcache", "ropepool", "ropepool+favor")}
        lines.append(f"| {N} | " + " | ".join(f"{g[m]['us']:.0f} ({g[m]['mem_mb']:.1f})"
                                             for m in ("kvcache", "ropepool", "ropepool+favor")) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
