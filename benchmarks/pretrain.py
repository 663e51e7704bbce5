"""Pretraining costs, measured in one run: for each method and backbone size that fits this machine,
(1) a full training step (teacher + student + heads + losses + AdamW + EMA for DINOv2; encoder on visible
tokens + decoder for MAE) divided by the bare backbone's forward+backward on the same crops, and
(2) the data loader's images/s against the training step's images/s (is the loader the bottleneck?).

    python benchmarks/pretrain.py [--img-size 64] [--batch-size 32] [--archs vit_tiny_patch16,vit_small_patch16]
                                  [--workers 0,2] [--steps 5]

Prints a table and appends it to benchmarks/pretrain.md.
"""
import argparse, datetime, os, platform, statistics, sys, tempfile, time
from pathlib import Path
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from biovfm import pretrain as P
from biovfm.data import example_data_list


def _median_time(fn, n: int, warmup: int = 1) -> float:
    for _ in range(warmup): fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench(method: str, arch: str, img_size: int, batch_size: int, steps: int, workers: list, data_list: str) -> dict:
    cfg = P.make_config(method=method, arch=arch, img_size=img_size, batch_size=batch_size, max_steps=1000,
                        data_list=data_list, out_dir=tempfile.mkdtemp())
    torch.manual_seed(0)
    model, teacher = P.build_model(cfg)
    criterion = P.get_method(method).criterion(cfg)
    opt = P.make_optimizer(model, cfg)
    dev, dtype = torch.device('cpu'), torch.float32
    ds, sampler, loader = P.make_data(cfg)
    batch = next(iter(loader))
    sv = P.schedules(cfg, 100)
    params = [p for p in model.parameters() if p.requires_grad]

    def step():
        P.apply_schedules(opt, sv)
        out = P.forward_loss(model, teacher, criterion, batch, cfg, sv, dev, dtype)
        opt.zero_grad(set_to_none=True); out['loss'].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad or float('inf'))
        opt.step()
        if teacher is not None: P.ema_update(model, teacher, sv['momentum'])

    bare = P.backbone_of(model)
    crops = [batch['global_crops']] + ([batch['local_crops']] if batch.get('local_crops') is not None else []) if method == 'dinov2' else [batch['images']]

    def bare_step():
        bare.zero_grad(set_to_none=True)
        sum(bare.forward_features(x).float().mean() for x in crops).backward()

    t_step = _median_time(step, steps)
    t_bare = _median_time(bare_step, steps)
    row = dict(method=method, arch=P.short_arch(arch), img_size=img_size, patch=cfg.patch_size, batch=batch_size,
               step_s=round(t_step, 4), bare_fwd_bwd_s=round(t_bare, 4), step_over_bare=round(t_step/t_bare, 2),
               step_img_s=round(batch_size/t_step, 1))
    for w in workers:
        _, s2, ld = P.make_data(P.make_config(**{**cfg.__dict__, 'num_workers': w}))
        it = iter(ld); next(it)  # start workers
        n = max(3, steps)
        t0 = time.perf_counter()
        for _ in range(n): next(it)
        row[f'loader_img_s_w{w}'] = round(batch_size*n/(time.perf_counter() - t0), 1)
        row[f'loader_over_step_w{w}'] = round(row[f'loader_img_s_w{w}']/row['step_img_s'], 2)
        del it, ld
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--img-size', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--archs', default='vit_tiny_patch16,vit_small_patch16')
    ap.add_argument('--methods', default='mae,dinov2')
    ap.add_argument('--workers', default='0,2')
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--out', default=str(ROOT/'benchmarks'/'pretrain.md'))
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    dl = str(example_data_list(n=256, size=224))
    rows = [bench(m, arch, a.img_size, a.batch_size, a.steps, [int(w) for w in a.workers.split(',')], dl)
            for m in a.methods.split(',') for arch in a.archs.split(',')]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    hdr = (f"\n## {datetime.datetime.now():%Y-%m-%d %H:%M} - {platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__}, "
           f"{torch.get_num_threads()} threads, fp32, load average {load:.1f} at the end\n\n"
           f"`python benchmarks/pretrain.py --img-size {a.img_size} --batch-size {a.batch_size} --archs {a.archs} --workers {a.workers}`; "
           "small CPU preset (DINOv2: 2 global + 4 local crops at half size, 1,024 prototypes; MAE: 2-block 128-wide decoder). "
           "`step_over_bare` = full training step / bare backbone forward+backward on the same crops (DINOv2: global + local crops; "
           "MAE: all tokens, so below 1 means the 75% masking pays for the decoder); `loader_over_step` > 1 means the loader keeps up.\n\n")
    md = '\n'.join(['| ' + ' | '.join(df.columns) + ' |', '|' + '---|'*len(df.columns)]
                   + ['| ' + ' | '.join(map(str, r)) + ' |' for r in df.itertuples(index=False)])
    new = not Path(a.out).exists()
    with open(a.out, 'a') as f: f.write(('# Pretraining step cost\n' if new else '') + hdr + md + '\n')
    return df


if __name__ == '__main__':
    main()
