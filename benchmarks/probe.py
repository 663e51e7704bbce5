"""Probing stage benchmark: ratios measured in one run, printed and appended to benchmarks/probe.md.

1. fast vs faithful protocol: wall time and AUC difference on BreastMNIST and PneumoniaMNIST
   (vit_tiny/16 random init, 64 px upsampled from the 28 px files, 100 epochs each unless told otherwise;
   a faithful run shortened with --faithful-epochs is timed per epoch and extrapolated to 100 epochs,
   and its AUC is that of the shortened schedule: both are labelled as such);
2. fast-probe wall time (cold cache) / one frozen forward pass over the same images;
3. vectorised bootstrap vs a per-resample scikit-learn loop (1000 resamples of a 20k-sample test set).

Usage: python benchmarks/probe.py [--faithful-epochs breastmnist=100,pneumoniamnist=10] [--img-size 64]
"""
import argparse, sys, tempfile, time, platform
from pathlib import Path
import numpy as np
import torch
from biovfm import probe as P

ap = argparse.ArgumentParser()
ap.add_argument('--img-size', type=int, default=64)
ap.add_argument('--backbone', default='random:vit_tiny_patch16_224')
ap.add_argument('--epochs', type=int, default=100)
ap.add_argument('--faithful-epochs', default='breastmnist=100,pneumoniamnist=10')
ap.add_argument('--n-boot-sklearn', type=int, default=1000)
args = ap.parse_args()
fe = {k: int(v) for k, v in (kv.split('=') for kv in args.faithful_epochs.split(','))}
lines = [f"\n## Run {time.strftime('%Y-%m-%d %H:%M')} ({platform.node()}, {torch.get_num_threads()} torch threads, "
         f"{args.backbone}, {args.img_size} px upsampled from 28 px)\n"]
def say(s): print(s, flush=True); lines.append(s)

tmp = Path(tempfile.mkdtemp())
bb = P.load_probe_backbone(args.backbone, args.img_size, seed=42)
say('| benchmark | fast s | faithful s (epochs run) | faithful s at 100 epochs | speed-up | AUC fast | AUC faithful | diff |')
say('|---|---|---|---|---|---|---|---|')
fwd = {}
for bm in ('breastmnist', 'pneumoniamnist'):
    data = P.load_benchmark(bm, args.img_size, resize_from=28)
    n_img = sum(len(v) for v in data.x.values())
    t = time.perf_counter()
    for sp in ('train', 'val', 'test'): P.extract_features(bb.model, data.x[sp])
    fwd[bm] = (time.perf_counter() - t, n_img)
    t = time.perf_counter()
    rf, rec_f = P.probe_one(bb, data, 'fast', args.epochs, cache_dir=tmp/f'cache-{bm}', out_dir=tmp/'out')  # cold cache
    t_fast = time.perf_counter() - t
    ep = fe.get(bm, args.epochs)
    t = time.perf_counter()
    rF, rec_F = P.probe_one(bb, data, 'faithful', ep, out_dir=tmp/'out')
    t_faith = time.perf_counter() - t
    # extrapolation: the per-epoch part (train_s) scales with epochs; feature/bootstrap parts do not
    t_faith100 = t_faith + rec_F['train_s']*(args.epochs/ep - 1)
    a_f, a_F = (r.set_index('metric').loc['auc', 'value'] for r in (rf, rF))
    say(f"| {bm} | {t_fast:.1f} | {t_faith:.1f} ({ep}) | {t_faith100:.1f}{'' if ep == args.epochs else ' (extrapolated)'} | "
        f"{t_faith100/t_fast:.1f}x | {a_f:.4f} | {a_F:.4f}{'' if ep == args.epochs else f' ({ep}-epoch schedule)'} | {a_f - a_F:+.4f} |")
say('')
for bm, (tf, n) in fwd.items():
    r = P.probe_one(bb, P.load_benchmark(bm, args.img_size, resize_from=28), 'fast', args.epochs, cache_dir=tmp/f'cold2-{bm}')[1]
    say(f"- fast probe (cold cache, {args.epochs} epochs, 1000-resample bootstrap) / one frozen forward pass over the same {n} images, "
        f"{bm}: {r['total_s']:.2f} s / {tf:.2f} s = **{r['total_s']/tf:.2f}x** (head training {r['train_s']:.2f} s, bootstrap {r['bootstrap_s']:.2f} s)")

rng = np.random.default_rng(0); n = 20_000
y = rng.integers(0, 2, (n, 1)); s1 = np.clip(y[:, 0]*.2 + rng.random(n)*.8, 0, 1); s = np.stack([1-s1, s1], 1)
t = time.perf_counter(); vb = P.bootstrap_metrics(y, s, 'binary', [0.5], 1000, 42); t_vec = time.perf_counter() - t
t = time.perf_counter(); sb = P.sklearn_bootstrap(y, s, 'binary', [0.5], args.n_boot_sklearn, 42); t_sk = time.perf_counter() - t
t_sk1000 = t_sk*1000/args.n_boot_sklearn
agree = max(np.nanmax(np.abs(vb[m][:args.n_boot_sklearn] - sb[m])) for m in P.METRICS)
say(f"- bootstrap, 20,000 test samples, 1000 resamples, 5 metrics: vectorised {t_vec:.2f} s vs scikit-learn loop "
    f"{t_sk1000:.1f} s{'' if args.n_boot_sklearn == 1000 else f' (extrapolated from {args.n_boot_sklearn})'} = **{t_sk1000/t_vec:.0f}x**; "
    f"max abs difference {agree:.1e}")
md = Path(__file__).with_suffix('.md'); new = not md.exists()
with open(md, 'a') as f: f.write(('# Probing: fast vs faithful protocol, bootstrap\n' if new else '') + '\n'.join(lines) + '\n')
