"Every stage benchmark runs in its smoke mode (tiny sizes) and prints its ratio rows: a broken benchmark fails here."
import math, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'benchmarks'))
import run_all

# the rows each script must print in its smoke mode: the ratio against its peer is the figure
EXPECTED = {
    'curate': [r'\*\*curate 1 worker / plain loop: \d+\.\d+\*\*', r'\*\*curate 2 workers / plain loop: \d+\.\d+\*\*',
               r'speed-up 1 -> 2 workers: \d+\.\d+x'],
    'pretrain': [r'dinov2 +vit_tiny .*', r'mae +vit_tiny .*'],
    'monitor': [r'dinov2 +vit_tiny .*', r'mae +vit_tiny .*', r'\*\*online evaluation at eval_every=100, eval_n=250: '
                r'at most [\d.]+% of the wall time \(target 10%: (met|NOT met)\)\*\*'],
    'probe': [r'\| breastmnist \| [\d.]+ \| [\d.]+ \(1\) \| .* \| [\d.]+x \|', r'breastmnist: .* = \*\*[\d.]+x\*\*',
              r'scikit-learn loop .* = \*\*\d+x\*\*'],
    'scale': [r'\| 80,000 \| .* \| 50/50 \|', r"`near_pairs`.*the same pairs", r'target at 200,000 rows.*\*\*met\*\*'],
    'shards': [r'\| tar shards \| 0 \| \d+ \| \*\*[\d.]+x\*\* \|'],
}


def run_smoke(stage: str) -> str:
    out = subprocess.run([sys.executable, str(ROOT/'benchmarks'/f'{stage}.py'), '--smoke'], capture_output=True,
                         text=True, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_every_benchmark_is_run_and_tested():
    "`make bench` (run_all) runs every stage script and this file smoke-tests each; other scripts are listed as such."
    scripts = {p.stem for p in (ROOT/'benchmarks').glob('*.py')}
    assert set(run_all.STAGES) == scripts - set(run_all.NOT_STAGES) == set(EXPECTED)
    assert set(run_all.NOT_STAGES) <= scripts


@pytest.mark.parametrize('stage', sorted(EXPECTED))
def test_benchmark_smoke(stage):
    stdout = run_smoke(stage)
    for pattern in EXPECTED[stage]:
        assert re.search(pattern, stdout), f"{stage}.py --smoke printed no row matching {pattern!r}:\n{stdout[-3000:]}"
    if stage == 'monitor':  # our k-NN picks lightly's top-1 class; the share is a fraction of the wall time
        header = next(line.split() for line in stdout.splitlines() if line.split()[:1] == ['method'])
        for method in ('dinov2', 'mae'):
            row = dict(zip(header, next(l.split() for l in stdout.splitlines() if l.split()[:1] == [method])))
            assert float(row['knn_top1_agree']) >= 0.98, row
            assert 0 < float(row['eval_share']) < 1, row
    if stage == 'pretrain':  # ours / peer and step / bare for both methods, positive and finite
        header = next(line.split() for line in stdout.splitlines() if line.split()[:1] == ['method'])
        for method in ('dinov2', 'mae'):
            row = dict(zip(header, next(l.split() for l in stdout.splitlines() if l.split()[:1] == [method])))
            for ratio in ('ours_over_peer', 'step_over_bare', 'peer_over_bare'):
                assert 0 < float(row[ratio]) < math.inf, (method, ratio, row)


def test_train_peer_saves_a_backbone_the_probe_loads(tmp_path):
    "The lightly peers train over a biovfm data list and save a backbone folder that `load_backbone` reads back."
    # patch 4 at 32 px: lightly's `random_block_mask` needs a grid larger than 4 x 4
    import torch
    from biovfm.backbones import load_backbone
    from biovfm.data import example_data_list
    from peers import make_peer, train_peer

    data_list = example_data_list(n=64, size=224)
    for method in ('dinov2', 'mae'):
        sizes = dict(n_prototypes=64, head_hidden=32, head_bottleneck=16, local_size=16) if method == 'dinov2' else {}
        out = train_peer(method, data_list, tmp_path/method, steps=2, batch_size=4, img_size=32, patch_size=4, **sizes)
        log = (out/'log.csv').read_text().splitlines()
        assert log[0] == 'step,loss' and len(log) == 3
        model, info = load_backbone(out)
        assert info['method'] == f'lightly-{method}' and info['img_size'] == 32
        peer = make_peer(method, img_size=32, patch_size=4, **sizes)
        peer.backbone.load_state_dict(model.state_dict())  # the same architecture as the peer's own backbone
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 192)
    with pytest.raises(ValueError, match='no lightly peer for method'):
        make_peer('simclr')
