"""``momentumlab bench optimizers``: time one optimizer step on a model-sized parameter set.

Every optimizer of :mod:`empirics.optim`, torch's AdamW (fused and foreach) and
SGD, and the reference implementations that are installed (the authors'
``adamp`` AdamP/SGDP; ``pytorch_optimizer``'s AdamP, SGDP, TAM, AdaTAM) step
the same parameters: about 25M float32 values (``--size``, in millions) in a
ResNet-like mix of conv kernels, matrices and vectors, too large for the CPU
cache.  Conv-kernel gradients are orthogonal to their rows, as behind
BatchNorm, so AdamP/SGDP's projection runs.  Steps are timed in interleaved
rounds (after warm-up) and each optimizer reports the median; ratios are to
torch's fused AdamW on the same parameters.  Targets (issue 3, on the CPU):
VRAdam <= 1.5x, TAM/AdaTAM <= 2x, AdamP/SGDP <= 3x, and each faster than every
reference implementation of the same optimizer.
"""
from __future__ import annotations

import importlib
import json
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["add_subcommand", "model_shapes", "run_benchmark", "TARGETS"]

#: CPU targets: step time / torch fused AdamW step time
TARGETS = {"VRAdam": 1.5, "TAM": 2.0, "AdaTAM": 2.0, "AdamP": 3.0, "SGDP": 3.0}
WIDTHS = (64, 128, 256, 512)


def model_shapes(numel: float) -> list[tuple]:
    """A ResNet-like list of shapes totalling about ``numel`` values (at least one block)."""
    scale = 1.0
    block = _block(WIDTHS)
    size = sum(_numel(s) for s in block)
    if numel < size:  # shrink the widths for smoke tests
        scale = max((numel / size) ** 0.5, 1 / 16)
        block = _block(tuple(max(4, int(c * scale)) for c in WIDTHS))
        size = sum(_numel(s) for s in block)
    reps = max(1, round(numel / size))
    return [s for _ in range(reps) for s in block]


def _block(widths) -> list[tuple]:
    shapes = []
    for c in widths:
        shapes += [(c, c, 3, 3), (c,), (c,), (c, c, 3, 3), (c,), (c,), (4 * c, c), (4 * c,)]
    shapes += [(1000, widths[-1]), (1000,)]
    return shapes


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _candidates(has_cuda_params: bool):
    """(label, optimizer family, kind, factory) for everything that can run here."""
    import torch

    from momentumlab.empirics.optim import SGDP, TAM, AdamP, AdaTAM, VRAdam

    out = [
        ("torch AdamW (fused)", "AdamW", "torch", lambda p: torch.optim.AdamW(p, lr=1e-3, fused=True)),
        ("torch AdamW (foreach)", "AdamW", "torch", lambda p: torch.optim.AdamW(p, lr=1e-3, foreach=True)),
        ("torch SGD momentum (foreach)", "SGD", "torch",
         lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, foreach=True)),
        ("VRAdam", "VRAdam", "ours", lambda p: VRAdam(p, lr=1e-3)),
        ("VRAdam (fused=False)", "VRAdam", "ours", lambda p: VRAdam(p, lr=1e-3, fused=False)),
        ("AdamP", "AdamP", "ours", lambda p: AdamP(p, lr=1e-3, weight_decay=1e-2)),
        ("SGDP", "SGDP", "ours", lambda p: SGDP(p, lr=1e-3, weight_decay=1e-5)),
        ("TAM", "TAM", "ours", lambda p: TAM(p, lr=1e-3)),
        ("AdaTAM", "AdaTAM", "ours", lambda p: AdaTAM(p, lr=1e-4)),
    ]
    if not has_cuda_params:
        out.insert(5, ("VRAdam (foreach, fused=False)", "VRAdam", "ours",
                       lambda p: VRAdam(p, lr=1e-3, fused=False, foreach=True)))
    refs = {
        "adamp": [("adamp AdamP (authors)", "AdamP", "AdamP", dict(lr=1e-3, weight_decay=1e-2)),
                  ("adamp SGDP (authors)", "SGDP", "SGDP", dict(lr=1e-3, momentum=0.9, weight_decay=1e-5))],
        "pytorch_optimizer": [
            ("pytorch_optimizer AdamP", "AdamP", "AdamP", dict(lr=1e-3, weight_decay=1e-2)),
            ("pytorch_optimizer SGDP", "SGDP", "SGDP", dict(lr=1e-3, momentum=0.9, weight_decay=1e-5)),
            ("pytorch_optimizer TAM", "TAM", "TAM", dict(lr=1e-3)),
            ("pytorch_optimizer AdaTAM", "AdaTAM", "AdaTAM", dict(lr=1e-4)),
        ],
    }
    for module, entries in refs.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        for label, family, cls_name, kw in entries:
            cls = getattr(mod, cls_name)
            out.append((label, family, "reference", lambda p, cls=cls, kw=kw: cls(p, **kw)))
    return out


def _orthogonal_rows(g, w):
    gv, wv = g.view(g.shape[0], -1), w.view(w.shape[0], -1)
    wn = wv / wv.norm(dim=1, keepdim=True)
    gv -= wn * (wn * gv).sum(1, keepdim=True)


def run_benchmark(device: str = "auto", size: float = 25.0, repeat: int = 15, warmup: int = 3,
                  seed: int = 0, only=None, log=print) -> dict:
    """Run the benchmark; returns the report (see :func:`add_subcommand`)."""
    import torch

    from momentumlab.empirics.backend import resolve_device

    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    shapes = model_shapes(size * 1e6)
    params = [torch.randn(s, generator=gen).to(dev).requires_grad_() for s in shapes]
    for p in params:
        g = torch.randn(p.shape, generator=gen).to(dev)
        if p.dim() == 4:
            _orthogonal_rows(g, p.detach())
        p.grad = g
    snapshot = [p.detach().clone() for p in params]
    everything = _candidates(dev.type == "cuda")
    unmatched = [o for o in only or () if not any(o.lower() in c[0].lower() for c in everything)]
    if unmatched:
        known = ", ".join(c[0] for c in everything)
        raise ValueError(f"--only {' '.join(unmatched)} matches no optimizer; known: {known}")
    cands = [c for c in everything if not only or any(o.lower() in c[0].lower() for o in only)]
    if not any(c[0] == "torch AdamW (fused)" for c in cands):
        cands.insert(0, everything[0])

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    opts = []
    for label, family, kind, make in cands:
        opts.append((label, family, kind, make(params)))
    times = {label: [] for label, *_ in cands}
    for r in range(warmup + repeat):
        for label, _, _, opt in opts:
            sync()
            t0 = time.perf_counter()
            opt.step()
            sync()
            if r >= warmup:
                times[label].append(time.perf_counter() - t0)
        with torch.no_grad():  # keep the parameters in range whatever the optimizers did
            for p, s in zip(params, snapshot):
                p.copy_(s)
        log(f"round {r + 1}/{warmup + repeat}")
    base = statistics.median(times["torch AdamW (fused)"])
    rows = []
    for label, family, kind, _ in opts:
        med = statistics.median(times[label])
        rows.append({"name": label, "optimizer": family, "kind": kind, "median_ms": 1e3 * med,
                     "min_ms": 1e3 * min(times[label]), "ratio": med / base})
    for row in rows:
        if row["kind"] != "ours":
            continue
        refs = [r["ratio"] for r in rows if r["kind"] == "reference" and r["optimizer"] == row["optimizer"]]
        target = TARGETS.get(row["optimizer"])
        row["target"] = target
        row["meets_target"] = None if target is None else row["ratio"] <= target
        row["faster_than_references"] = all(row["ratio"] < x for x in refs) if refs else None
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    for dist in ("adamp", "pytorch_optimizer"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return {
        "benchmark": "optimizers", "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "dtype": "float32",
        "numel": sum(p.numel() for p in params), "tensors": len(params),
        "warmup": warmup, "repeat": repeat, "baseline": "torch AdamW (fused)",
        "versions": versions, "targets": TARGETS, "results": rows,
    }


def _print_table(report: dict) -> None:
    print(f"optimizer step on {report['numel'] / 1e6:.1f}M values in {report['tensors']} tensors, "
          f"{report['device']} ({report['threads']} threads), median of {report['repeat']} after "
          f"{report['warmup']} warm-up; ratio to torch AdamW (fused)")
    head = f"{'optimizer':<34}{'median ms':>11}{'min ms':>9}{'ratio':>8}  {'target':<11}{'vs references'}"
    print(head)
    print("-" * len(head))
    for r in report["results"]:
        target = ""
        if r.get("target") is not None:
            target = f"<={r['target']:g} {'ok' if r['meets_target'] else 'MISS'}"
        refs = {True: "faster", False: "SLOWER", None: ""}[r.get("faster_than_references")]
        print(f"{r['name']:<34}{r['median_ms']:>11.2f}{r['min_ms']:>9.2f}{r['ratio']:>8.2f}  {target:<11}{refs}")


def _cmd_bench(args) -> int:
    import sys

    if args.target != "optimizers":  # pragma: no cover - argparse restricts choices
        return 2
    try:
        report = run_benchmark(args.device, args.size, args.repeat, args.warmup, args.seed, args.only,
                               log=lambda m: print(m, file=sys.stderr, end="\r") if sys.stderr.isatty() else None)
    except ValueError as exc:
        print(f"momentumlab bench: error: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    _print_table(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def add_subcommand(subparsers) -> None:
    """Register ``bench`` on the ``momentumlab`` command line."""
    p = subparsers.add_parser("bench", help="time optimizer steps against torch and reference implementations")
    p.add_argument("target", choices=["optimizers"], help="what to benchmark")
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    p.add_argument("--size", type=float, default=25.0, help="millions of parameter values (default 25)")
    p.add_argument("--repeat", type=int, default=15, help="timed steps per optimizer (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", metavar="NAME", help="optimizers whose label contains NAME "
                   "(torch's fused AdamW always runs as the baseline)")
    p.set_defaults(func=_cmd_bench)
