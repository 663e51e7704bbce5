"""Cost of the online evaluation (nbs/04a_monitor) at its default cadence, and its k-NN against lightly's, in one run.

For each method and backbone of the learning profile (`make learn`: its sizes, patch sizes and recipes), measured
interleaved on the same machine: (1) our training step (pretrain.py's `our_step`: the loop's optimisation step,
update and log row) and one online evaluation of the backbone the run exports (the default sets: every local
MedMNIST benchmark, `eval_n` train images as memory and `eval_n` validation images as queries; embedding, DINO's
weighted k-NN, the logistic regression); the figure is the evaluation's share of the wall time at the default
cadence, eval / (eval_every x step + eval), target at most 10%; (2) the peer: our k-NN (`knn_scores`) against
lightly's k-NN monitor (`lightly.utils.benchmarking.knn_predict`, the function behind lightly's `KNNClassifier`)
on the same features with the same k and temperature: the share of queries whose top-1 class agrees (should be 1)
and the time ratio.

    python benchmarks/monitor.py [--eval-every 100] [--eval-n 250] [--archs vit_tiny,vit_small]
                                 [--methods dinov2,mae] [--rounds 5] [--smoke]

Prints a table and appends it to benchmarks/monitor.md (--smoke: ViT-T only, 2 rounds, prints only).
"""
import argparse, os, statistics, sys, tempfile
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT/'benchmarks'))
from biovfm import pretrain as P
from biovfm.data import example_data_list
from biovfm.learn import LEARN_BUDGET, LEARN_PATCH, LEARN_RECIPES
from biovfm.experiments import matrix_patches
from biovfm.monitor import OnlineEval, embed, eval_sets, knn_scores
from pretrain import cpu_snapshot, interleaved, markdown, our_step, section_header

IMG_SIZE = 32  # the learning profile's pretraining size
N_IMAGES = 128  # MAE's batch in the profile; every slice of 14 embedded raw files at 64 px gives that many


def lightly_top1(memory: torch.Tensor, memory_y, queries: torch.Tensor, n_classes: int, k: int, t: float):
    "Top-1 classes of lightly's k-NN monitor (features L2-normalised as its docs recommend)."
    from lightly.utils.benchmarking import knn_predict

    bank = torch.nn.functional.normalize(memory.float(), dim=1).T.contiguous()
    labels = torch.as_tensor(np.asarray(memory_y).reshape(len(memory), -1)[:, 0]).long()
    queries = torch.nn.functional.normalize(queries.float(), dim=1)
    return knn_predict(queries, bank, labels, n_classes, knn_k=min(k, len(memory)), knn_t=t)[:, 0]


def knn_peer(model, sets, rounds: int, k: int = 20, t: float = 0.07) -> dict:
    "Agreement of our k-NN's top-1 class with lightly's, and the time ratio, over the single-label sets."
    agree, total, times = 0, 0, {'ours': [], 'peer': []}
    for eval_set in sets:
        if eval_set.kind == 'multi-label':
            continue
        memory, queries = embed(model, eval_set.memory_x), embed(model, eval_set.query_x)
        ours = lambda: knn_scores(memory, eval_set.memory_y, queries, eval_set.n_classes, k, t)
        peer = lambda: lightly_top1(memory, eval_set.memory_y, queries, eval_set.n_classes, k, t)
        agree += int((torch.as_tensor(ours().argmax(1)) == peer()).sum())
        total += len(queries)
        measured = interleaved(dict(ours=ours, peer=peer), rounds)
        for name in times:
            times[name] += measured[name]
    ratio = statistics.median(o/p for o, p in zip(times['ours'], times['peer']))
    return dict(knn_top1_agree=round(agree/total, 4), knn_ours_over_lightly=round(ratio, 2))


def bench(method: str, arch: str, eval_every: int, eval_n: int, rounds: int, data_list: str) -> dict:
    steps, batch_size = LEARN_BUDGET[(method, arch)]
    patch_size = matrix_patches(LEARN_BUDGET, LEARN_PATCH)[method, arch]  # the profile's: DINOv2 ViT-S/4, MAE ViT-S/8
    cfg = P.make_config(method=method, arch=arch, img_size=IMG_SIZE, patch_size=patch_size,
                        batch_size=batch_size, max_steps=steps, data_list=data_list, out_dir=tempfile.mkdtemp(),
                        **LEARN_RECIPES[method])
    torch.manual_seed(0)
    step, _, model = our_step(cfg)
    sets = eval_sets('auto', IMG_SIZE, eval_n, eval_n)
    if not sets:
        raise SystemExit("no MedMNIST benchmark file on this machine: the online evaluation has no set to time")
    monitor = OnlineEval(sets, eval_every, steps)
    exported = P.backbone_of(model)  # the same backbone as the exported one (DINOv2: the teacher's architecture)
    times = interleaved(dict(step=step, evaluation=lambda: monitor(exported, 0, 0)), rounds)
    step_s, eval_s = statistics.median(times['step']), statistics.median(times['evaluation'])
    share = eval_s / (eval_every*step_s + eval_s)
    row = dict(method=method, arch=arch, patch=cfg.patch_size, batch=batch_size, eval_every=eval_every,
               eval_n=eval_n, sets=len(sets), eval_share=round(share, 4), step_s=round(step_s, 3),
               eval_s=round(eval_s, 3))
    return row | knn_peer(exported, sets, rounds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--eval-every', type=int, default=P.Config.eval_every, help="steps between evaluations")
    ap.add_argument('--eval-n', type=int, default=P.Config.eval_n, help="memory and query images per set")
    ap.add_argument('--archs', default='vit_tiny,vit_small')
    ap.add_argument('--methods', default='dinov2,mae')
    ap.add_argument('--rounds', type=int, default=5, help='interleaved rounds (median)')
    ap.add_argument('--smoke', action='store_true', help='ViT-T only, 2 rounds, prints only')
    ap.add_argument('--md', default=str(ROOT/'benchmarks'/'monitor.md'))
    a = ap.parse_args(argv)
    if a.smoke:
        a.archs, a.rounds, a.md = 'vit_tiny', 2, None
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    data_list = str(example_data_list(n=N_IMAGES, size=64, slice_step=1))
    start = cpu_snapshot()
    rows = [bench(m, arch, a.eval_every, a.eval_n, a.rounds, data_list)
            for m in a.methods.split(',') for arch in a.archs.split(',')]
    df = pd.DataFrame(rows)
    print(df.to_string(index=False))
    worst = df.eval_share.max()
    verdict = 'met' if worst <= 0.10 else 'NOT met'
    print(f"**online evaluation at eval_every={a.eval_every}, eval_n={a.eval_n}: at most {worst:.1%} of the wall "
          f"time (target 10%: {verdict})**")
    if a.md is None:
        return df
    command = (f"python benchmarks/monitor.py --eval-every {a.eval_every} --eval-n {a.eval_n} --archs {a.archs} "
               f"--methods {a.methods} --rounds {a.rounds}")
    hdr = (section_header(command, start) + f"; the learning profile's sizes and "
           f"recipes at {IMG_SIZE} px. `eval_share` = one online evaluation / (eval_every training steps + one "
           f"evaluation), step and evaluation timed interleaved ({a.rounds} rounds, medians); the peer is lightly's "
           "k-NN monitor (`knn_predict`) on the same features, k=20, T=0.07: `knn_top1_agree` = share of "
           "validation queries with the same top-1 class, `knn_ours_over_lightly` = time ratio of the k-NN alone "
           f"(median of per-round ratios).\n\n**At most {worst:.1%} of the wall time (target 10%: {verdict}).**\n\n")
    new = not Path(a.md).exists()
    with open(a.md, 'a') as f:
        f.write(('# Online evaluation cost\n' if new else '') + hdr + markdown(df) + '\n')
    return df


if __name__ == '__main__':
    main()
