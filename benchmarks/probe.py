"""Probing stage benchmark: ratios measured in one run, printed and appended to benchmarks/probe.md.

1. `timing`: fast vs faithful protocol, wall time and AUC difference on BreastMNIST and PneumoniaMNIST
   (vit_tiny/16 random init, 64 px upsampled from the 28 px files, 100 epochs each unless told otherwise;
   a faithful run shortened with --faithful-epochs is timed per epoch and extrapolated to 100 epochs,
   and its AUC is that of the shortened schedule: both are labelled as such); the fast probe caches
   --timing-views augmented views (0: un-augmented features, the cheapest);
2. `timing` also: fast-probe wall time (cold cache) / one frozen forward pass over the same images;
3. `equivalence`: does the fast protocol reproduce the faithful one? Both protocols with the same seed,
   backbone and schedule (--equiv-epochs per benchmark), the fast one with V cached augmented views per
   image for each V of --views ('E': one per epoch); the AUC difference fast - faithful with its paired
   95% CI (the same 1000 bootstrap resamples of the test set), and a second faithful run (another seed)
   as the noise floor (--noise-seed -1 skips it);
4. `switches`: the effect of each fidelity switch (one changed at a time from the authors' defaults) on AUC and MCC,
   paired against the all-defaults probe (fast protocol, --epochs epochs, the --equiv-backbone at --equiv-img-size);
5. `bootstrap`: vectorised bootstrap vs a per-resample scikit-learn loop (1000 resamples of a 20k-sample test set).

`make bench` runs `timing,bootstrap` (the ratios against the authors' per-epoch loop and scikit-learn); the
`equivalence` and `switches` studies take hours on a CPU and are run by hand. --smoke: tiny sizes (BreastMNIST
only, 32 px, 2 epochs, 20 scikit-learn resamples), prints only.

Usage: python benchmarks/probe.py [--sections timing,equivalence,switches,bootstrap] [--smoke]
       [--equiv-epochs breastmnist=20,pneumoniamnist=10] [--reference faithful|views]
       [--views 0,1,2,4,8,E] [--equiv-backbone random:vit_tiny_patch16_224:patch_size=8] [--equiv-img-size 32]
"""
import argparse, os, re, tempfile, time, platform
from pathlib import Path
import numpy as np
import torch
from biovfm import probe as P, metrics as M, backbones as BK, features as FE, benchmarks as B

ap = argparse.ArgumentParser()
ap.add_argument('--sections', default='timing,equivalence,switches,bootstrap')
ap.add_argument('--benchmarks', default='breastmnist,pneumoniamnist', help='benchmarks of `timing` and `switches`')
ap.add_argument('--smoke', action='store_true', help='tiny sizes, timing and bootstrap only; prints only')
ap.add_argument('--img-size', type=int, default=64)
ap.add_argument('--backbone', default='random:vit_tiny_patch16_224')
ap.add_argument('--epochs', type=int, default=100)
ap.add_argument('--faithful-epochs', default='breastmnist=100,pneumoniamnist=10')
ap.add_argument('--timing-views', type=int, default=0)
ap.add_argument('--equiv-backbone', default='random:vit_tiny_patch16_224:patch_size=8')
ap.add_argument('--equiv-img-size', type=int, default=32)
ap.add_argument('--equiv-epochs', default='breastmnist=20,pneumoniamnist=10')
ap.add_argument('--views', default='0,1,2,4,8,E')
ap.add_argument('--noise-seed', type=int, default=43, help='seed of the second faithful run (the noise floor); -1: skip it')
ap.add_argument('--reference', default='faithful', choices=['faithful', 'views'],
                help="'views': the faithful reference run as the fast probe with one view per epoch (identical)")
ap.add_argument('--switch-views', type=int, default=10)
ap.add_argument('--switch-mode-benchmarks', default='breastmnist')
ap.add_argument('--n-boot-sklearn', type=int, default=1000)
ap.add_argument('--md', default=str(Path(__file__).with_suffix('.md')), help='Markdown file the results are appended to')
args = ap.parse_args()
if args.smoke:
    args.sections, args.benchmarks, args.img_size, args.epochs, args.md = 'timing,bootstrap', 'breastmnist', 32, 2, None
    args.faithful_epochs, args.n_boot_sklearn = 'breastmnist=1', 20
sections = set(args.sections.split(','))
lines = [f"\n## Run {time.strftime('%Y-%m-%d %H:%M')} ({platform.node()}, {torch.get_num_threads()} torch threads, "
         f"load average {os.getloadavg()[0]:.1f} at the start; sections: {args.sections})\n"]
def say(s): print(s, flush=True); lines.append(s)
tmp = Path(tempfile.mkdtemp())

if 'timing' in sections:
    fe = {k: int(v) for k, v in (kv.split('=') for kv in args.faithful_epochs.split(','))}
    say(f"### Wall time, fast vs faithful ({args.backbone}, {args.img_size} px upsampled from 28 px, "
        f"fast with {args.timing_views} cached views)\n")
    bb = BK.load_probe_backbone(args.backbone, args.img_size, seed=42)
    say(f'| benchmark | fast s | faithful s (epochs run) | faithful s at {args.epochs} epochs | speed-up | AUC fast | AUC faithful | diff |')
    say('|---|---|---|---|---|---|---|---|')
    fwd = {}
    for bm in args.benchmarks.split(','):
        data = B.load_benchmark(bm, args.img_size, resize_from=28)
        n_img = sum(len(v) for v in data.x.values())
        t = time.perf_counter()
        for sp in ('train', 'val', 'test'): FE.extract_features(bb.model, data.x[sp])
        fwd[bm] = (time.perf_counter() - t, n_img)
        t = time.perf_counter()
        rf, rec_f = P.probe_one(bb, data, protocol='fast', epochs=args.epochs, aug_views=args.timing_views, cache_dir=tmp/f'cache-{bm}', out_dir=tmp/'out')
        t_fast = time.perf_counter() - t
        ep = fe.get(bm, args.epochs)
        t = time.perf_counter()
        rF, rec_F = P.probe_one(bb, data, protocol='faithful', epochs=ep, out_dir=tmp/'out')
        t_faith = time.perf_counter() - t
        # extrapolation: the per-epoch part (train_s) scales with epochs; feature/bootstrap parts do not
        t_faith100 = t_faith + rec_F['train_s']*(args.epochs/ep - 1)
        a_f, a_F = (r.set_index('metric').loc['auc', 'value'] for r in (rf, rF))
        extrapolated = '' if ep == args.epochs else ' (extrapolated)'
        shortened = '' if ep == args.epochs else f' ({ep}-epoch schedule)'
        say(f"| {bm} | {t_fast:.1f} | {t_faith:.1f} ({ep}) | {t_faith100:.1f}{extrapolated} | {t_faith100/t_fast:.1f}x | "
            f"{a_f:.4f} | {a_F:.4f}{shortened} | {a_f - a_F:+.4f} |")
    say('')
    for bm, (tf, n) in fwd.items():
        data = B.load_benchmark(bm, args.img_size, resize_from=28)
        r = P.probe_one(bb, data, protocol='fast', epochs=args.epochs, aug_views=args.timing_views, cache_dir=tmp/f'cold2-{bm}')[1]
        say(f"- fast probe (cold cache, {args.epochs} epochs, 1000-resample bootstrap) / one frozen forward pass over the same "
            f"{n} images, {bm}: {r['total_s']:.2f} s / {tf:.2f} s = **{r['total_s']/tf:.2f}x** "
            f"(head training {r['train_s']:.2f} s, bootstrap {r['bootstrap_s']:.2f} s)")

if 'equivalence' in sections:
    equiv_epochs = {k: int(v) for k, v in (kv.split('=') for kv in args.equiv_epochs.split(','))}
    say(f"\n### Does fast equal faithful? ({args.equiv_backbone}, {args.equiv_img_size} px upsampled from 28 px, "
        "authors' defaults otherwise)\n")
    say("AUC = bootstrap mean [95% CI]; delta = AUC - AUC of the faithful run with the same seed (42), paired: the same "
        "1000 resamples of the test set. `V` = cached augmented views per training image (0: un-augmented features).\n")
    say('| benchmark | epochs | probe | V | AUC [95% CI] | delta vs faithful [paired 95% CI] | within CI | features s | train s |')
    say('|---|---|---|---|---|---|---|---|---|')
    bb = BK.load_probe_backbone(args.equiv_backbone, args.equiv_img_size, seed=42)
    for bm, ep in equiv_epochs.items():
        data = B.load_benchmark(bm, args.equiv_img_size, resize_from=28)
        cache = tmp/f'equiv-cache-{bm}'
        def faithful(seed, out):
            "The faithful probe, run as such or (--reference views) as the fast one with one view per epoch: identical."
            if args.reference == 'faithful': return P.probe_one(bb, data, protocol='faithful', epochs=ep, seed=seed, out_dir=out)[1]
            return P.probe_one(bb, data, protocol='fast', epochs=ep, aug_views=-1, seed=seed, cache_dir=cache, out_dir=out)[1]
        how = '' if args.reference == 'faithful' else ', as fast V = E'
        ref = faithful(42, tmp/f'equiv-faithful-{bm}')
        with np.load(tmp/f'equiv-faithful-{bm}'/ref['predictions']) as z: ref_boot = z['boot_auc']
        def row(label, V, rec, out, reference=False):
            with np.load(out/rec['predictions']) as z: boot = z['boot_auc']
            lo, hi = M.ci_bounds(boot)
            delta = boot - ref_boot
            d_lo, d_hi = M.ci_bounds(delta)
            inside = '-' if reference else ('yes' if d_lo <= 0 <= d_hi else '**no**')
            say(f"| {bm} | {ep} | {label} | {V} | {np.nanmean(boot):.4f} [{lo:.4f}, {hi:.4f}] | "
                f"{np.nanmean(delta):+.4f} [{d_lo:+.4f}, {d_hi:+.4f}] | {inside} | "
                f"{rec['features_s']:.1f} | {rec['train_s']:.1f} |")
        row(f'faithful (seed 42{how})', '-', ref, tmp/f'equiv-faithful-{bm}', reference=True)
        # the largest V first: the smaller ones reuse its cached views (view k is epoch k's, whatever V)
        for V in sorted({ep if v == 'E' else int(v) for v in args.views.split(',')}, reverse=True):
            out = tmp/f'equiv-fast-{bm}-{V}'
            _, rec = P.probe_one(bb, data, protocol='fast', epochs=ep, aug_views=V, cache_dir=cache, out_dir=out)
            row('fast', V, rec, out)
        if args.noise_seed < 0:
            continue
        out = tmp/f'equiv-faithful-noise-{bm}'
        row(f'faithful (seed {args.noise_seed}{how})', '-', faithful(args.noise_seed, out), out)

if 'switches' in sections:
    say(f"\n### Effect of each fidelity switch ({args.equiv_backbone}, {args.equiv_img_size} px upsampled from 28 px, "
        f"fast protocol, {args.epochs} epochs)\n")
    say("Each row changes one switch from the authors' defaults; delta = metric - the all-defaults probe's on the same "
        "1000 test resamples (paired 95% CI). Features are un-augmented (V = 0) except for `backbone_mode`, which only "
        f"acts on augmented views (V = {args.switch_views} in both of its rows, {args.switch_mode_benchmarks} only) and "
        "needs a DINOv2 backbone (the same random weights labelled `dinov2`); `normalize='backbone'` feeds ImageNet "
        "statistics (our exports'); `bootstrap='seeded'` draws other resamples, so its row compares intervals.\n")
    say('| benchmark | switch | AUC | delta AUC [paired 95% CI] | MCC | delta MCC [paired 95% CI] |')
    say('|---|---|---|---|---|---|')
    import dataclasses
    bb = BK.load_probe_backbone(args.equiv_backbone, args.equiv_img_size, seed=42)
    imagenet = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))  # our exports' statistics
    variants = [("normalize='backbone'", dict(normalize='backbone')), ("features='normed-tokens'", dict(features='normed-tokens')),
                ("thresholds='midpoint'", dict(thresholds='midpoint')), ('drop_last=False', dict(drop_last=False)),
                ("bootstrap='seeded'", dict(bootstrap='seeded'))]
    for bm in args.benchmarks.split(','):
        data = B.load_benchmark(bm, args.equiv_img_size, resize_from=28)
        def run(label, probe_bb, V, **kw):
            out = tmp/f"switch-{bm}-{re.sub(r'[^a-z0-9]+', '-', label)}-{V}"
            rows, rec = P.probe_one(probe_bb, data, protocol='fast', epochs=args.epochs, aug_views=V, cache_dir=tmp/'switch-cache', out_dir=out, **kw)
            with np.load(out/rec['predictions']) as z: boot = {m: z[f'boot_{m}'] for m in ('auc', 'mcc')}
            return boot, rows.set_index('metric')
        base, base_rows = run('defaults', bb, 0)
        say(f"| {bm} | defaults (authors) | {base_rows.loc['auc', 'value']:.4f} | - | {base_rows.loc['mcc', 'value']:.4f} | - |")
        mode_rows = []
        if bm in args.switch_mode_benchmarks.split(','):   # augmented views: one training-set pass per view
            dino = dataclasses.replace(bb, method='dinov2')
            dino_base, _ = run('dino-authors', dino, args.switch_views)
            mode_rows = [(f"backbone_mode='eval' (V = {args.switch_views})", dict(backbone_mode='eval'))]
        for label, kw in variants + mode_rows:
            probe_bb, V, ref = (dino, args.switch_views, dino_base) if 'backbone_mode' in label else (bb, 0, base)
            if label.startswith('normalize'):   # the random backbone stores no statistics: ImageNet's, as our exports
                probe_bb = dataclasses.replace(bb, info=dict(bb.info, **imagenet))
            boot, rows = run(label, probe_bb, V, **kw)
            cells = []
            for m in ('auc', 'mcc'):
                if label.startswith('bootstrap'):
                    lo, hi = M.ci_bounds(boot[m], 'seeded'); ref_lo, ref_hi = M.ci_bounds(ref[m])
                    cells += [f"{rows.loc[m, 'value']:.4f}", f"CI [{lo:.4f}, {hi:.4f}] vs [{ref_lo:.4f}, {ref_hi:.4f}]"]
                    continue
                d_lo, d_hi = M.ci_bounds(boot[m] - ref[m])
                cells += [f"{rows.loc[m, 'value']:.4f}", f"{np.nanmean(boot[m] - ref[m]):+.4f} [{d_lo:+.4f}, {d_hi:+.4f}]"]
            say(f"| {bm} | {label} | " + ' | '.join(cells) + ' |')

if 'bootstrap' in sections:
    say('')
    rng = np.random.default_rng(0); n = 20_000
    y = rng.integers(0, 2, (n, 1)); s1 = np.clip(y[:, 0]*.2 + rng.random(n)*.8, 0, 1); s = np.stack([1-s1, s1], 1)
    t = time.perf_counter(); vb = M.bootstrap_metrics(y, s, 'binary', [0.5], 1000, 42); t_vec = time.perf_counter() - t
    t = time.perf_counter(); sb = M.sklearn_bootstrap(y, s, 'binary', [0.5], args.n_boot_sklearn, 42); t_sk = time.perf_counter() - t
    t_sk1000 = t_sk*1000/args.n_boot_sklearn
    agree = max(np.nanmax(np.abs(vb[m][:args.n_boot_sklearn] - sb[m])) for m in M.METRICS)
    extrapolated = '' if args.n_boot_sklearn == 1000 else f' (extrapolated from {args.n_boot_sklearn})'
    say(f"- bootstrap, 20,000 test samples, 1000 resamples, 5 metrics: vectorised {t_vec:.2f} s vs scikit-learn loop "
        f"{t_sk1000:.1f} s{extrapolated} = **{t_sk1000/t_vec:.0f}x**; max abs difference {agree:.1e}")

md = Path(args.md) if args.md else None
if md is not None:
    new = not md.exists()
    with open(md, 'a') as f: f.write(('# Probing: fast vs faithful protocol, bootstrap\n' if new else '') + '\n'.join(lines) + '\n')
