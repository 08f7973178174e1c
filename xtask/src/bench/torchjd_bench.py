"""TorchJD side of `cargo xtask bench-backends --torchjd` (written to a temp file and run).

Same protocol as the Rust side: per (method, K, P) a pre-built G (K x P, float32, uniform in
[-1, 1)), warm-up calls, then the median / min / max wall time of `aggregator(G)` over several
calls; the one-read bound is `G.sum()` timed the same way. One JSON record per line on stdout.
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torchjd.aggregation as agg


def make(name, k):
    if name == "CAGrad":
        return agg.CAGrad(c=0.4)
    if name == "NashMTL":
        return agg.NashMTL(n_tasks=k)
    if name == "Krum":
        return agg.Krum(n_byzantine=1) if k >= 4 else None
    if name == "FairGrad":
        return agg.FairGrad(alpha=2.0)
    if name == "ConicGrad":
        cls = getattr(agg, "ConicGrad", None)
        return cls() if cls else None
    cls = getattr(agg, name, None)
    return cls() if cls else None


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), min(ts), max(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", required=True)
    ap.add_argument("--p", required=True)
    ap.add_argument("--methods", required=True, help="ours=TorchJDClass,...")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    methods = [m.split("=") for m in a.methods.split(",") if m]
    for k in map(int, a.k.split(",")):
        for p in map(int, a.p.split(",")):
            n = k * p
            reps = a.reps or (3 if a.quick else 21 if n <= 1e6 else 9 if n <= 2e7 else 5)
            warm = 1 if a.quick else 2
            g = torch.rand(k, p, dtype=torch.float32) * 2 - 1
            bound = timed(lambda: g.sum().item(), 2, max(reps, 5))[0]
            for ours, theirs in methods:
                a_ = make(theirs, k)
                if a_ is None:
                    print(f"torchjd: {theirs} not available for K={k}", file=sys.stderr)
                    continue
                try:
                    med, lo, hi = timed(lambda: a_(g), warm, reps)
                except Exception as e:  # noqa: BLE001 - report and go on
                    print(f"torchjd: {theirs} K={k} P={p} failed: {e}", file=sys.stderr)
                    continue
                print(json.dumps({
                    "backend": f"torchjd-cpu-{a.threads}t", "method": ours, "k": k, "p": p,
                    "median_s": med, "min_s": lo, "max_s": hi, "bound_s": bound,
                    "ratio_to_bound": med / bound, "solve_s": 0.0,
                    "peak_extra_bytes": 0, "grads_bytes": 4 * n, "reps": reps,
                }), flush=True)
            del g


if __name__ == "__main__":
    main()
