"""A peer at the same budget (issue 25): the learning profile's pretraining runs (`make learn`, runs/learn) against the
same backbones trained by lightly's own example recipes (benchmarks/peers.py: `examples/pytorch/dinov2.py`,
`examples/pytorch/mae.py`, changed only where data, model size and budget must be set) on the same corpus for the same
number of images, both probed with the profile's protocol; paired bootstrap of the test AUCs (ours - peer).

    .venv/bin/python benchmarks/learn_peer.py                 # after `make learn`; writes benchmarks/learn_peer.md
    .venv/bin/python benchmarks/learn_peer.py --smoke         # 4 steps on the example list, a few seconds: CI
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'benchmarks'))
from peers import train_peer  # noqa: E402


def peer_sizes(pretrain: dict) -> dict:
    "The sizes the peer shares with our run: backbone, tokens, heads, crops (recipes stay lightly's)."
    keys = ('n_prototypes', 'head_hidden', 'head_bottleneck', 'n_local', 'local_size') if pretrain['method'] == 'dinov2' else ()
    return {k: pretrain[k] for k in keys if pretrain.get(k) is not None}


def finished_peer(folder: Path, pretrain: dict) -> bool:
    "True when `folder` holds the peer backbone of exactly these settings (steps, batch, sizes, data list MD5)."
    from biovfm.core import file_md5

    info_path = Path(folder) / 'backbone.json'
    if not info_path.exists():
        return False
    info = json.loads(info_path.read_text())
    same = dict(steps=pretrain['max_steps'], batch_size=pretrain['batch_size'], img_size=pretrain['img_size'],
                data_list_md5=file_md5(pretrain['data_list']), peer_sizes=json.dumps(peer_sizes(pretrain)))
    return all(info.get(key) == value for key, value in same.items())


def compare(ours: Path, peer: Path, out: Path, benchmarks: str, img_size: int, epochs: int, aug_views: int) -> pd.DataFrame:
    "Probe both backbone folders the same way; per benchmark: AUCs, CIs and the paired difference ours - peer."
    from biovfm.probe import probe_many
    from biovfm.core import find_predictions
    from biovfm.demo import paired_auc

    probe = dict(benchmarks=benchmarks.split(','), img_size=img_size, resize_from=28, protocol='fast', epochs=epochs,
                 aug_views=aug_views, n_boot=1000, seed=42, normalize='backbone', verbose=False)
    rows = []
    metrics = {name: probe_many([str(folder)], out_dir=out / name, **probe) for name, folder in (('ours', ours), ('peer', peer))}
    for benchmark in benchmarks.split(','):
        preds = {name: np.load(find_predictions(out / name, benchmark)[0]) for name in metrics}
        auc = {name: m[(m.benchmark == benchmark) & (m.metric == 'auc')].iloc[0] for name, m in metrics.items()}
        paired = paired_auc(preds['ours']['y_true'], preds['ours']['y_score'], preds['peer']['y_score'],
                            str(preds['ours']['kind']))
        rows.append(dict(benchmark=benchmark, ours=auc['ours'].value, ours_ci=f"[{auc['ours'].ci_lo:.3f}, {auc['ours'].ci_hi:.3f}]",
                         peer=auc['peer'].value, peer_ci=f"[{auc['peer'].ci_lo:.3f}, {auc['peer'].ci_hi:.3f}]", **paired))
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', default=str(ROOT / 'runs' / 'learn' / 'runs'), help='the learning profile runs folder')
    ap.add_argument('--only', default='dinov2_vit_tiny,mae_vit_tiny', help='which profile runs get a peer')
    ap.add_argument('--out', default=str(ROOT / 'runs' / 'learn_peer'))
    ap.add_argument('--md', default=str(ROOT / 'benchmarks' / 'learn_peer.md'))
    ap.add_argument('--smoke', action='store_true', help='4 steps of each method on the example list (CI)')
    args = ap.parse_args(argv)
    out = Path(args.out)
    lines = [f"# A peer at the same budget ({time.strftime('%Y-%m-%d')}, `{' '.join(['benchmarks/learn_peer.py'] + (argv or sys.argv[1:]))}`)", '']
    tables = []
    for name in args.only.split(','):
        if args.smoke:
            from biovfm.data import example_data_list
            from biovfm.pretrain import config_record, make_config, train

            method, arch = name.split('_', 1)
            smoke = dict(method=method, arch=arch, img_size=32, patch_size=4, batch_size=8, max_steps=4, eval_every=0,
                         data_list=str(example_data_list(out / 'data', n=32, size=32)), out_dir=str(out / 'ours' / name))
            ours = train(make_config(**smoke), progress=False)
            pretrain = config_record(make_config(**smoke))   # the flat record a checkpoint stores
            benchmarks, epochs, aug_views = 'breastmnist', 2, 0
        else:
            from biovfm.pretrain import load_checkpoint, CKPT

            ours = Path(args.runs) / 'model_scaling' / name / 'pretrain'
            pretrain = load_checkpoint(ours / CKPT)['config']   # our run's exact settings: data, sizes, budget
            benchmarks, epochs, aug_views = 'breastmnist,pneumoniamnist', 100, 0   # the profile's probe (demo_probe)
        data_list = pretrain['data_list']
        from biovfm.core import short_arch

        started = time.time()
        peer = out / 'peer' / name
        if not args.smoke and finished_peer(peer, pretrain):
            print(f"{peer}: the peer of these settings is trained (backbone.json: steps, batch, data MD5): reused")
        else:
            peer = train_peer(pretrain['method'], data_list, peer, steps=pretrain['max_steps'],
                              batch_size=pretrain['batch_size'], arch=short_arch(pretrain['arch']),
                              img_size=pretrain['img_size'], patch_size=pretrain['patch_size'], seed=pretrain['seed'],
                              **peer_sizes(pretrain))
        peer_s = time.time() - started
        table = compare(Path(ours), peer, out / 'probe' / name, benchmarks, pretrain['img_size'], epochs, aug_views)
        table.insert(0, 'run', name)
        tables.append(table)
        lines += [f"- `{name}`: {pretrain['max_steps']} steps of {pretrain['batch_size']} images each, ours and lightly's; "
                  f"the peer trained in {peer_s:.0f} s here (a few seconds: reused)"]
    result = pd.concat(tables, ignore_index=True)
    from biovfm.core import markdown_table
    lines += ['', markdown_table(result), '',
              'delta = ours - peer on the same bootstrap resamples of the test set (1,000); ours is at least as good when '
              'delta_hi >= 0 (inside the paired CI or better).', '']
    print('\n'.join(lines))
    if not args.smoke:
        Path(args.md).write_text('\n'.join(lines))
    return result


if __name__ == '__main__':
    main()
