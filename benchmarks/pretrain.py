"""Pretraining step cost against its peers, measured in one run: for each method and backbone size,
(1) our training step (the loop's `optimisation_step` + `apply_or_skip` + `log_row`: schedules, forward, losses,
backward, per-module clipping, AdamW, EMA, the logged statistics) against the same step assembled from lightly's
own modules as lightly's examples assemble it (benchmarks/peers.py) and against the bare backbone's
forward+backward on the same crops, timed interleaved (ours, peer, bare, rotating the order each round) so that
a machine whose speed drifts affects all three alike; `ours_over_peer` is the median of the per-round ratios;
(2) the data loader's images/s against our step's images/s (is the loader the bottleneck?).

    python benchmarks/pretrain.py [--img-size 64] [--batch-size 32] [--archs vit_tiny_patch16,vit_small_patch16]
                                  [--methods dinov2,mae] [--workers 0,2] [--rounds 7] [--smoke]

Prints a table and appends it to benchmarks/pretrain.md (--smoke: tiny sizes, prints only).
"""
import argparse, datetime, os, platform, statistics, sys, tempfile, time
from pathlib import Path
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT/'benchmarks'))
from biovfm import pretrain as P
from biovfm.data import example_data_list
from peers import make_peer

N_IMAGES = 64  # the example data list's size: the embedded raw folder curates to 84 images at max_files=14
STEP_INDEX = 100  # the schedules' step: past the small preset's last-layer freeze (steps 0-19), as most steps are


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: dict, rounds: int) -> dict:
    "Seconds of each callable in `fns`, `rounds` times, the order rotated every round (one warm-up call each first)."
    for fn in fns.values():
        fn()
    names, times = list(fns), {name: [] for name in fns}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(_timed(fns[name]))
    return times


def our_step(cfg):
    "Our loop's step on one fixed batch (built as the loop builds it), the batch, and the model."
    out = Path(tempfile.mkdtemp())
    run = P.build_training(cfg, out, None, P.data_fingerprint(cfg.data_list), 1, 0, torch.device('cpu'),
                           torch.float32)
    _, _, loader = P.make_data(cfg)
    batch = next(iter(loader))
    schedule_values = P.schedules(cfg, STEP_INDEX)

    def step():
        loss_terms, loss_value, grad_norm, finite = P.optimisation_step(run, batch, schedule_values)
        P.apply_or_skip(run, finite, schedule_values, loss_value)
        P.log_row(run, 0, loss_value, loss_terms, schedule_values, grad_norm, finite, dict(data_s=0.0, step_s=1.0))

    return step, batch, run.model


def quartiles(numerators: list, denominators: list) -> tuple:
    "First and third quartiles of the per-round ratios: the spread the median ratio comes with."
    ratios = [n / d for n, d in zip(numerators, denominators)]
    q1, _, q3 = statistics.quantiles(ratios, n=4, method='inclusive') if len(ratios) > 1 else (ratios[0],) * 3
    return q1, q3


def peer_sizes(cfg) -> dict:
    "The lightly peer's sizes, read from our config (same backbone, heads / decoder, crops)."
    shared = dict(arch=cfg.arch, img_size=cfg.img_size, patch_size=cfg.patch_size, batch_size=cfg.batch_size)
    if cfg.method == 'dinov2':
        return shared | dict(n_prototypes=cfg.options.n_prototypes, head_hidden=cfg.options.head_hidden,
                             head_bottleneck=cfg.options.head_bottleneck, n_local=cfg.options.n_local,
                             local_size=cfg.options.local_size,
                             layerscale=cfg.layerscale, drop_path=cfg.drop_path)
    return shared | dict(decoder_dim=cfg.options.decoder_dim, decoder_depth=cfg.options.decoder_depth,
                         decoder_heads=cfg.options.decoder_heads, mask_ratio=cfg.options.mask_ratio)


def crops_of(batch: dict, cfg) -> list:
    "The batch's crops as lightly's loader gives them: one tensor per view."
    if cfg.method == 'mae':
        return [batch['images']]
    local = list(batch['local_crops'].chunk(cfg.options.n_local)) if batch['local_crops'] is not None else []
    return list(batch['global_crops'].chunk(2)) + local


def bench(method: str, arch: str, img_size: int, batch_size: int, rounds: int, workers: list, data_list: str) -> dict:
    cfg = P.make_config(method=method, arch=arch, img_size=img_size, batch_size=batch_size, max_steps=1000,
                        data_list=data_list, out_dir=tempfile.mkdtemp(), preset='small')
    torch.manual_seed(0)
    ours, batch, model = our_step(cfg)
    views = crops_of(batch, cfg)
    peer = make_peer(method, **peer_sizes(cfg))
    bare = P.backbone_of(model)

    def bare_step():
        bare.zero_grad(set_to_none=True)
        sum(bare.forward_features(x).float().mean() for x in views).backward()

    times = interleaved(dict(ours=ours, peer=lambda: peer.step(views, STEP_INDEX), bare=bare_step), rounds)
    t_ours, t_peer, t_bare = (statistics.median(times[k]) for k in ('ours', 'peer', 'bare'))
    row = dict(method=method, arch=P.short_arch(arch), img_size=img_size, patch=cfg.patch_size, batch=batch_size,
               ours_over_peer=round(statistics.median(o/p for o, p in zip(times['ours'], times['peer'])), 3),
               ours_over_peer_q1_q3='-'.join(f'{q:.3f}' for q in quartiles(times['ours'], times['peer'])),
               step_over_bare=round(statistics.median(o/b for o, b in zip(times['ours'], times['bare'])), 2),
               peer_over_bare=round(statistics.median(p/b for p, b in zip(times['peer'], times['bare'])), 2),
               step_s=round(t_ours, 4), peer_step_s=round(t_peer, 4), bare_fwd_bwd_s=round(t_bare, 4),
               step_img_s=round(batch_size/t_ours, 1))
    for w in workers:
        _, _, loader = P.make_data(P.make_config(**{**P.config_record(cfg), 'num_workers': w}))
        it = iter(loader)
        next(it)  # start the workers
        n = max(3, rounds)
        seconds = _timed(lambda: [next(it) for _ in range(n)])
        row[f'loader_img_s_w{w}'] = round(batch_size*n/seconds, 1)
        row[f'loader_over_step_w{w}'] = round(row[f'loader_img_s_w{w}']/row['step_img_s'], 2)
        del it, loader
    return row


def cpu_snapshot() -> tuple:
    "(busy and total CPU seconds of the machine since boot, CPU seconds of this process and its children)."
    times = os.times()
    own = times.user + times.system + times.children_user + times.children_system
    try:
        fields = [int(v) for v in open('/proc/stat').readline().split()[1:9]]
    except (OSError, ValueError):
        return None, None, own
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    ticks = os.sysconf('SC_CLK_TCK')
    return (user + nice + system + irq + softirq + steal) / ticks, sum(fields) / ticks, own


def other_cpu_share(start: tuple) -> float | None:
    "Share of the machine's CPU time that other processes used since `start` (a `cpu_snapshot()`); None off Linux."
    busy, total, own = cpu_snapshot()
    if busy is None or start[0] is None or total <= start[1]:
        return None
    return max(0.0, (busy - start[0]) - (own - start[2])) / (total - start[1])


def section_header(command: str, start: tuple) -> str:
    "A benchmark section's heading (date, machine, the CPU share other processes took since `start`), its command."
    other = other_cpu_share(start)
    load = 'other processes: unknown' if other is None else f"other processes used {other:.0%} of the CPU time"
    shared = ' -- a shared machine: seconds are inflated, the interleaved ratios stay comparable' \
        if other is not None and other > 0.10 else ''
    return (f"\n## {datetime.datetime.now():%Y-%m-%d %H:%M} - {platform.machine()}, {os.cpu_count()} CPU(s), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, {load} during the run"
            f"{shared}\n\n`{command}`")


def markdown(df: pd.DataFrame) -> str:
    return '\n'.join(['| ' + ' | '.join(df.columns) + ' |', '|' + '---|'*len(df.columns)]
                     + ['| ' + ' | '.join(map(str, r)) + ' |' for r in df.itertuples(index=False)])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--img-size', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--archs', default='vit_tiny_patch16,vit_small_patch16')
    ap.add_argument('--methods', default='dinov2,mae')
    ap.add_argument('--workers', default='0,2')
    ap.add_argument('--rounds', type=int, default=11, help='interleaved rounds of ours / peer / bare (median)')
    ap.add_argument('--smoke', action='store_true', help='tiny sizes (ViT-T at 32 px, batch 8, 2 rounds), prints only')
    ap.add_argument('--md', default=str(ROOT/'benchmarks'/'pretrain.md'))
    a = ap.parse_args(argv)
    if a.smoke:
        a.img_size, a.batch_size, a.archs, a.workers, a.rounds, a.md = 32, 8, 'vit_tiny_patch16', '0', 2, None
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    data_list = str(example_data_list(n=N_IMAGES, size=224))
    start = cpu_snapshot()
    rows = [bench(m, arch, a.img_size, a.batch_size, a.rounds, [int(w) for w in a.workers.split(',')], data_list)
            for m in a.methods.split(',') for arch in a.archs.split(',')]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    if a.md is None:
        return df
    command = (f"python benchmarks/pretrain.py --img-size {a.img_size} --batch-size {a.batch_size} --archs {a.archs} "
               f"--methods {a.methods} --workers {a.workers} --rounds {a.rounds}")
    hdr = (section_header(command, start) + "; small preset (DINOv2: 2 global + 4 "
           "local crops at half size, heads 512/128/1,024; MAE: 2-block 128-wide decoder), "
           f"{N_IMAGES}-image example data list. `ours_over_peer` = our loop's step / the same step assembled from "
           "lightly's modules as lightly's examples do (benchmarks/peers.py), median of the per-round ratios of "
           f"{a.rounds} interleaved rounds (`ours_over_peer_q1_q3`: their quartiles); `step_over_bare` / "
           "`peer_over_bare` = step / bare backbone "
           "forward+backward on the same crops (DINOv2: global + local crops; MAE: all tokens, so below 1 means "
           "the 75% masking pays for the decoder); seconds are medians, context only; `loader_over_step` > 1 "
           "means the loader keeps up.\n\n")
    new = not Path(a.md).exists()
    with open(a.md, 'a') as f:
        f.write(('# Pretraining step cost\n' if new else '') + hdr + markdown(df) + '\n')
    return df


if __name__ == '__main__':
    main()
