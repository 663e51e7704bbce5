"""`make gpu-check`: what a user runs first on the GPU server, in under 10 minutes on one GPU.

Checks, each printed as one PASS/FAIL line (exit status 1 if any failed):
1. the environment: torch with CUDA and FSDP2 (`torch.distributed.fsdp.fully_shard`), numpy >= 2, pydicom >= 3;
2. bf16 steps of DINOv2 and MAE at the reference recipe (224 px) for every backbone size of the paper
   (ViT-T/S/B/L at patch 16, ViT-H/14) on GPU 0: finite losses, none skipped, peak memory;
3. with 2+ GPUs: DDP against FSDP2 (+ activation checkpointing) over NCCL, same per-step losses within bf16 noise;
4. one throughput line per method and backbone (img/s/GPU) next to the rate the GPU-hour estimates of
   `configs/paper/` assume (A100 bf16 peak x 35% utilisation), so the estimates can be rescaled to this server.
`nbdev_test --flags cuda` (the notebooks' GPU cells) runs before this script in `make gpu-check`.
`--device cpu --archs vit_tiny` runs the same code on a CPU (how it is tested without a GPU).
"""
from __future__ import annotations
import argparse, sys, tempfile, time, traceback
from pathlib import Path
import pandas as pd

ARCHS = ('vit_tiny', 'vit_small', 'vit_base', 'vit_large', 'vit_huge')
BATCH_PER_GPU = dict(vit_tiny=64, vit_small=64, vit_base=32, vit_large=16, vit_huge=8)
results: list[tuple[str, bool, str]] = []


def check(name: str, fn) -> object:
    "Run one check; record and print PASS/FAIL with its detail (never stops the script)."
    t0 = time.time()
    try:
        detail = fn()
        ok = True
    except Exception as e:  # a failing check is reported, the others still run
        detail = f"{type(e).__name__}: {e}"
        traceback.print_exc(limit=3)
        ok = False
    line = f"{'PASS' if ok else 'FAIL'}  {name}  ({time.time() - t0:.0f} s)  {detail if detail is not None else ''}"
    print(line, flush=True)
    results.append((name, ok, str(detail)))
    return detail if ok else None


def check_environment(device: str) -> str:
    import numpy, pydicom, torch
    from torch.distributed.fsdp import fully_shard  # noqa: F401  (FSDP2: torch >= 2.6)
    problems = []
    if int(numpy.__version__.split('.')[0]) < 2: problems.append(f"numpy {numpy.__version__} < 2")
    if int(pydicom.__version__.split('.')[0]) < 3: problems.append(f"pydicom {pydicom.__version__} < 3")
    if device == 'cuda' and not torch.cuda.is_available(): problems.append("torch.cuda.is_available() is False")
    if problems: raise RuntimeError('; '.join(problems))
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if device == 'cuda' else ['cpu']
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, numpy {numpy.__version__}, pydicom {pydicom.__version__}; {gpus}"


def step_run(data_list: str, method: str, arch: str, img_size: int, steps: int, batch: int, device: str, **kw) -> pd.DataFrame:
    "A short pretraining run at the reference recipe; its log."
    from biovfm.pretrain import run
    # The run folder (a checkpoint of a few hundred MB per size) is removed with its log read.
    with tempfile.TemporaryDirectory(prefix=f'gpu_check_{method}_{arch}_') as out:
        run(method=method, arch=arch, data_list=data_list, out_dir=out, img_size=img_size, max_steps=steps,
            batch_size=batch, preset='reference', save_every=10**9, device=device,
            num_workers=4 if device == 'cuda' else 0, warmup_steps=0, **kw)
        log = pd.read_csv(Path(out)/'log.csv')
    if not log.loss.notna().all() or int(log.skipped.sum()):
        raise RuntimeError(f"non-finite or skipped steps: {log[['step', 'loss', 'skipped']].to_dict('records')}")
    return log


def assumed_images_per_s(method: str, arch: str, img_size: int) -> float:
    "The per-GPU rate behind the GPU-hour estimates of configs/paper (A100 bf16 peak x 35% utilisation)."
    from biovfm.experiments import train_flops_per_image
    big = arch in ('vit_large', 'vit_huge')
    flops = train_flops_per_image(method, arch, img_size, 14 if arch == 'vit_huge' else 16, grad_ckpt=big)
    return 312e12*0.35/flops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    ap.add_argument('--archs', default=','.join(ARCHS), help='backbone sizes to step (default: all five)')
    ap.add_argument('--img_size', type=int, default=224)
    ap.add_argument('--steps', type=int, default=6, help='steps per run; the first two are warm-up and not timed')
    ap.add_argument('--batch_scale', type=float, default=1.0, help='multiplies the per-GPU batch of each size')
    a = ap.parse_args(argv)
    import torch
    from biovfm.data import example_data_list

    check('environment: CUDA torch with FSDP2, numpy >= 2, pydicom >= 3', lambda: check_environment(a.device))
    data_list = check('example data list (curated from the embedded data/raw)',
                      lambda: str(example_data_list(n=128, size=a.img_size)))
    if data_list is None: return summary()
    archs = [s.strip() for s in a.archs.split(',') if s.strip()]
    if bad := [s for s in archs if s not in ARCHS]: raise SystemExit(f"--archs {bad}: choose from {ARCHS}")
    rates = []
    for arch in archs:
        batch = max(2, int(BATCH_PER_GPU[arch]*a.batch_scale))
        for method in ('dinov2', 'mae'):
            def one():
                log = step_run(data_list, method, arch, a.img_size, a.steps, batch, a.device)
                timed = log.iloc[2:] if len(log) > 2 else log
                rate = float(batch/(timed.step_s + timed.data_s).mean())
                rates.append(dict(method=method, arch=arch, batch_per_gpu=batch, images_per_s_per_gpu=round(rate, 1),
                                  assumed_by_estimates=round(assumed_images_per_s(method, arch, a.img_size), 1),
                                  peak_mem_gb=round(float(log.peak_mem_mb.max())/1024, 1)))
                return f"loss {log.loss.iloc[0]:.3f} -> {log.loss.iloc[-1]:.3f}, {rate:.1f} img/s, peak {log.peak_mem_mb.max()/1024:.1f} GB"
            check(f"{'bf16 ' if a.device == 'cuda' else ''}{method} {arch} step x{a.steps} (batch {batch})", one)
    n_gpus = torch.cuda.device_count() if a.device == 'cuda' else 0
    if n_gpus >= 2:
        def ddp_vs_fsdp():
            losses = {s: step_run(data_list, 'dinov2', 'vit_small', a.img_size, 4, 32, a.device, nproc=2, strategy=s,
                                  grad_ckpt=s == 'fsdp').loss.values for s in ('ddp', 'fsdp')}
            diff = float(abs(losses['ddp'] - losses['fsdp']).max())
            if diff > 5e-2: raise RuntimeError(f"DDP {losses['ddp']} vs FSDP2 {losses['fsdp']}: max |diff| {diff:.3g} > 5e-2")
            return f"max |loss diff| {diff:.2e} over 4 steps (bf16)"
        check('DDP vs FSDP2 + activation checkpointing over NCCL on 2 GPUs', ddp_vs_fsdp)
    else:
        print(f"SKIP  DDP vs FSDP2 (needs 2+ GPUs, found {n_gpus})")
    if rates:
        table = pd.DataFrame(rates)
        table['measured_over_assumed'] = (table.images_per_s_per_gpu/table.assumed_by_estimates).round(2)
        print("\nthroughput (img/s/GPU) vs the rate the configs/paper GPU-hour estimates assume "
              "(GPU-hours scale by 1/measured_over_assumed):")
        print(table.to_string(index=False))
    return summary()


def summary() -> int:
    failed = [name for name, ok, _ in results if not ok]
    print(f"\n{len(results) - len(failed)} PASS, {len(failed)} FAIL" + (f": {failed}" if failed else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
