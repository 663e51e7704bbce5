"Probing stage: metrics against medmnist.Evaluator and scikit-learn on real predictions, every task type, backbone loaders, cache, folders."
import json, os
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from biovfm.core import SCHEMAS, data_dir, read_table
from biovfm.benchmarks import MEDMNIST_2D, benchmark_info
from biovfm.backbones import save_backbone
from biovfm import probe as P, metrics as M, backbones as BK, features as FE, table1 as T1, benchmarks as B

SPEC = 'random:vit_tiny_patch16_224:patch_size=7'  # 16 tokens at 28 px: fast on CPU


@pytest.fixture(scope='module')
def breast_predictions(tmp_path_factory):
    "A real fast probe on BreastMNIST (28 px) and its saved predictions."
    out = tmp_path_factory.mktemp('bm')
    bb = BK.load_probe_backbone(SPEC, 28)
    data = B.load_benchmark('breastmnist', 28)
    rows, rec = P.probe_one(bb, data, protocol='fast', epochs=10, aug_views=0, n_boot=200, cache_dir=out/'cache', out_dir=out)
    with np.load(out/rec['predictions'], allow_pickle=False) as z: pred = {k: z[k] for k in z}
    return rows, rec, pred


def test_task_kinds_of_all_12():
    kinds = {f: B.task_kind(benchmark_info(f).task) for f in MEDMNIST_2D}
    assert kinds['chestmnist'] == 'multi-label' and kinds['retinamnist'] == 'multi-class'  # ordinal as multi-class, as the authors
    assert {kinds[f] for f in ('breastmnist', 'pneumoniamnist')} == {'binary'}
    assert sum(k == 'multi-class' for k in kinds.values()) == 9  # incl. retinamnist


def test_agrees_with_medmnist_evaluator(breast_predictions):
    from medmnist import Evaluator
    rows, rec, pred = breast_predictions
    ev = Evaluator('breastmnist', 'test', root=str(data_dir('medmnist')))
    auc, acc = ev.evaluate(pred['y_score'])
    pm = M.point_metrics(pred['y_true'], pred['y_score'], 'binary')  # threshold 0.5, as getACC
    assert pm['auc'] == pytest.approx(auc, abs=1e-12) and pm['acc'] == pytest.approx(acc, abs=1e-12)
    assert auc > 0.65  # a random ViT on breast ultrasound: a real, better than chance probe
    # the reported plain value uses the validation-tuned threshold; AUC does not depend on it
    assert rec['auc_point'] == pytest.approx(auc, abs=1e-12)


def test_vectorised_bootstrap_equals_sklearn_on_real_predictions(breast_predictions):
    rows, rec, pred = breast_predictions
    thr = pred['thresholds']
    a = M.bootstrap_metrics(pred['y_true'], pred['y_score'], 'binary', thr, n_boot=60, seed=42)
    b = M.sklearn_bootstrap(pred['y_true'], pred['y_score'], 'binary', thr, n_boot=60, seed=42)
    for m in M.METRICS: np.testing.assert_allclose(a[m], b[m], atol=1e-10)
    np.testing.assert_allclose(pred['boot_auc'][:60], a['auc'])  # stored replicates are these very resamples
    s = rows.set_index('metric')
    assert s.loc['auc', 'value'] == pytest.approx(np.nanmean(pred['boot_auc']))  # point = bootstrap mean
    assert (s.ci_lo <= s.value).all() and (s.value <= s.ci_hi).all()


def official_threshold(y, s):
    "The official get_best_p_vals for one label, written from its source: roc_curve candidates, MCC of s >= p, argmax."
    from sklearn.metrics import matthews_corrcoef, roc_curve
    _, _, probabilities = roc_curve(y, s)
    probabilities = probabilities[1:]
    probabilities.sort()
    if len(probabilities) > 1000: probabilities = probabilities[::int(len(probabilities) / 1000)]
    metrics = [matthews_corrcoef(y, np.where(s < p, 0, 1)) for p in probabilities]
    return probabilities[int(np.argmax(metrics))]


def test_thresholds_are_the_authors_on_real_predictions(breast_predictions):
    _, _, pred = breast_predictions
    yv, sv = pred['y_true_val'].ravel(), pred['y_score_val'][:, 1]
    assert pred['thresholds'][0] == official_threshold(yv, sv)


def test_authors_thresholds_with_many_candidates_and_multilabel():
    rng = np.random.default_rng(1)
    y = (rng.random((3000, 3)) < [.5, .1, .02]).astype(int)
    s = np.clip(y*.2 + rng.random((3000, 3))*.8, 0, 1)   # > 1000 roc_curve thresholds: thinned as the authors do
    got = M.tune_thresholds(y, s, 'multi-label')
    np.testing.assert_array_equal(got, [official_threshold(y[:, j], s[:, j]) for j in range(3)])


def test_midpoint_thresholds_maximise_validation_mcc(breast_predictions):
    from sklearn.metrics import matthews_corrcoef
    _, _, pred = breast_predictions
    yv, sv = pred['y_true_val'].ravel(), pred['y_score_val'][:, 1]
    t = M.tune_thresholds(yv, pred['y_score_val'], 'binary', 'midpoint')[0]
    best = matthews_corrcoef(yv, sv > t)
    for c in np.unique(sv): assert matthews_corrcoef(yv, sv > c) <= best + 1e-12


def test_bootstrap_resamples_and_intervals_are_the_authors():
    from sklearn.utils import resample
    rng = np.random.default_rng(0); n = 300
    y = rng.integers(0, 2, (n, 1)); p1 = np.clip(y[:, 0]*.3 + rng.random(n)*.7, 0, 1); s = np.stack([1-p1, p1], 1)
    idx = np.concatenate(list(M.bootstrap_indices(n, 1000, chunk=128)))
    for i in (0, 1, 517, 999): np.testing.assert_array_equal(idx[i], resample(np.arange(n), replace=True, random_state=i))
    auc = M.bootstrap_metrics(y, s, 'binary', [0.5], 1000)['auc']
    ordered = np.sort(auc)   # compute_cis: sorted_perfs.iloc[int(0.025 n) - 1], .iloc[int(0.975 n) - 1]
    assert M.ci_bounds(auc) == (ordered[24], ordered[974])
    lo, hi = M.ci_bounds(auc, 'seeded')
    assert (lo, hi) == tuple(np.percentile(auc, [2.5, 97.5]))


@pytest.mark.parametrize('task', ['multi-class', 'ordinal-regression', 'multi-label, binary-class', 'binary-class'])
def test_every_task_type_against_medmnist_and_sklearn(task):
    from medmnist.evaluator import getAUC, getACC
    rng = np.random.default_rng(0); n = 400
    kind = B.task_kind(task)
    if kind == 'multi-label':
        y = (rng.random((n, 5)) < [.4, .2, .1, .05, .03]).astype(int); s = np.clip(y*.25 + rng.random((n, 5))*.75, 0, 1)
    elif kind == 'binary':
        y = rng.integers(0, 2, (n, 1)); p1 = np.clip(y[:, 0]*.3 + rng.random(n)*.7, 0, 1); s = np.stack([1-p1, p1], 1)
    else:
        y = rng.integers(0, 5, (n, 1)); s = rng.dirichlet(np.ones(5), n); s[np.arange(n), y[:, 0]] += .4; s /= s.sum(1, keepdims=True)
    pm = M.point_metrics(y, s, kind)
    assert pm['auc'] == pytest.approx(getAUC(y, s, task), abs=1e-12)
    assert pm['acc'] == pytest.approx(getACC(y, s, task), abs=1e-12)
    thr = M.tune_thresholds(y[:200], s[:200], kind)
    a = M.bootstrap_metrics(y, s, kind, thr, n_boot=30, seed=5); b = M.sklearn_bootstrap(y, s, kind, thr, n_boot=30, seed=5)
    for m in M.METRICS: np.testing.assert_allclose(np.nan_to_num(a[m], nan=-9), np.nan_to_num(b[m], nan=-9), atol=1e-10)


def test_degenerate_resamples_are_dropped_and_counted():
    y = np.zeros((40, 1), int); y[0] = 1  # one positive: many resamples miss it
    s = np.random.default_rng(0).random(40)
    boot = M.bootstrap_metrics(y, np.stack([1-s, s], 1), 'binary', [0.5], n_boot=300, seed=0)
    summ = M.summarise_bootstrap(boot)
    n_valid = summ.n_boot_valid.iloc[0]
    assert 100 < n_valid < 300  # P(miss) = (39/40)^40 ~ 36%
    assert summ.value.notna().all()


def test_chunking_does_not_change_resamples():
    a = np.concatenate(list(M.bootstrap_indices(50, 37, seed=3, chunk=37)))
    b = np.concatenate(list(M.bootstrap_indices(50, 37, seed=3, chunk=37)))
    assert (a == b).all() and a.shape == (37, 50)


def test_timm_weights_from_local_files(tmp_path):
    import timm
    torch.manual_seed(0)
    src = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=10, img_size=32, patch_size=8, reg_tokens=1).eval()
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(tmp_path/'w.safetensors'))
    torch.save(src.state_dict(), tmp_path/'w.pth')
    x = torch.randn(2, 3, 32, 32)
    ref = BK.pool_features(src, x)
    for f in ('w.safetensors', 'w.pth'):
        bb = BK.load_probe_backbone(f'timm:vit_tiny_patch16_224:{tmp_path/f}:patch_size=8,reg_tokens=1', img_size=32)
        assert bb.method == 'timm' and bb.arch == 'vit_tiny'
        torch.testing.assert_close(BK.pool_features(bb.model, x), ref)
    # an untrusted pickle is refused (weights_only loading)
    torch.save({'state_dict': src.state_dict(), 'evil': Path('/')}, tmp_path/'bad.pth')
    with pytest.raises(Exception): BK.load_probe_backbone(f'timm:vit_tiny_patch16_224:{tmp_path/"bad.pth"}:patch_size=8,reg_tokens=1', img_size=32)


def test_biomedclip_vision_trunk_without_open_clip(tmp_path):
    import timm
    src = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0).eval()
    sd = {f'visual.trunk.{k}': v for k, v in src.state_dict().items()}
    sd['visual.head.proj.weight'] = torch.randn(16, 192); sd['text.transformer.w'] = torch.randn(3)
    torch.save(sd, tmp_path/'open_clip_pytorch_model.bin')
    (tmp_path/'open_clip_config.json').write_text(json.dumps({'model_cfg': {'vision_cfg': {'timm_model_name': 'vit_tiny_patch16_224'}}}))
    bb = BK.load_probe_backbone(f'biomedclip:{tmp_path}', img_size=224)
    x = torch.randn(1, 3, 224, 224)
    src.reset_classifier(0, global_pool='avg')   # the authors' BiomedCLIP features: timm's trunk, final norm, token mean
    with torch.no_grad():
        torch.testing.assert_close(BK.pool_features(bb.model, x), src(x), atol=1e-5, rtol=1e-5)
    assert bb.method == 'biomedclip'


def test_rad_dino_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='config.json'): BK.load_probe_backbone(f'rad-dino:{tmp_path}')
    (tmp_path/'config.json').write_text('{}')
    try: import transformers  # noqa
    except ImportError:
        with pytest.raises(ImportError, match='transformers'): BK.load_probe_backbone(f'rad-dino:{tmp_path}')


def test_cache_key_follows_weights_and_preprocessing(tmp_path):
    data = B.load_benchmark('breastmnist', 28)
    m = BK.load_probe_backbone(SPEC, 28, seed=0).model
    save_backbone(m, tmp_path/'exp', 'vit_tiny_patch16_224', 28, 'dinov2', model_kwargs=dict(patch_size=7))
    bb = BK.load_probe_backbone(tmp_path/'exp', 28)
    f1, h1 = FE.cached_features(bb, data, 'val', tmp_path/'c')
    f2, h2 = FE.cached_features(BK.load_probe_backbone(tmp_path/'exp', 28), data, 'val', tmp_path/'c')
    assert (h1, h2) == (False, True) and (f1 == f2).all()
    with torch.no_grad(): m.blocks[0].mlp.fc1.weight.add_(0.01)  # retrained: same folder, new weights
    save_backbone(m, tmp_path/'exp', 'vit_tiny_patch16_224', 28, 'dinov2', model_kwargs=dict(patch_size=7))
    _, h3 = FE.cached_features(BK.load_probe_backbone(tmp_path/'exp', 28), data, 'val', tmp_path/'c')
    _, h4 = FE.cached_features(bb, data, 'val', tmp_path/'c', view='aug-42-0')
    assert (h3, h4) == (False, False)


def _folder(dest, n, size, multilabel, n_classes, seed=0):
    "A generated labelled folder whose labels are visible in the images (so a probe can learn them)."
    rng = np.random.default_rng(seed); (dest/'img').mkdir(parents=True); rows = []
    for i in range(n):
        if multilabel: lab = [k for k in range(n_classes) if rng.random() < .4] or [0]
        else: lab = [int(rng.integers(0, n_classes))]
        im = rng.integers(0, 60, (size, size)).astype(np.int32); ii, jj = np.mgrid[:size, :size]
        for k in lab: im += 60*(((ii//(k+1)) + (jj//(k+1))) % 2)  # label k: a checkerboard of period k+1 (a texture)
        im = np.clip(im, 0, 255).astype(np.uint8)
        Image.fromarray(im).save(dest/'img'/f'{i}.png')
        rows.append(dict(path=f'img/{i}.png', label='|'.join(map(str, lab))))
    pd.DataFrame(rows).to_csv(dest/'labels.csv', index=False)
    return dest


@pytest.mark.parametrize('multilabel,n_classes', [(True, 4), (False, 3)])
def test_labelled_folder_end_to_end(tmp_path, multilabel, n_classes):
    fold = _folder(tmp_path/'ds', 160, 28, multilabel, n_classes)
    out = tmp_path/'out'
    met = P.probe_many([SPEC], benchmarks=[], out_dir=out, img_size=28, protocol='fast', dataset_dir=fold, epochs=15, aug_views=0, n_boot=100,
                       cache_dir=tmp_path/'c', verbose=False)
    assert list(met.columns) == SCHEMAS['metrics'] and set(met.metric) == set(M.METRICS)
    auc = met.set_index('metric').loc['auc', 'value']
    assert auc > 0.8  # the label textures are easy un-augmented (chance: 0.5; rotating 1-4 px checkerboards aliases them)
    assert (out/'splits'/'ds.csv').exists()
    runs = read_table(out/'probe_runs.csv')
    assert runs.kind.iloc[0] == ('multi-label' if multilabel else 'multi-class')
    t = T1.table1(out/'metrics.csv', out)
    assert t.ci_method.iloc[0] == 'replicates' and (out/'table1.md').exists()
    assert t.auc.iloc[0] == pytest.approx(100*auc)


def test_both_protocols_exported_and_random_like(tmp_path):
    m = BK.load_probe_backbone(SPEC, 28, seed=3).model
    exp = save_backbone(m, tmp_path/'mae_tiny', 'vit_tiny_patch16_224', 28, 'mae', model_kwargs=dict(patch_size=7),
                        total_params=6_000_000, steps=5)
    out = tmp_path/'out'
    for proto, ep in (('fast', 10), ('faithful', 1)):
        P.probe_many([str(exp), f'random-like:{exp}'], benchmarks=['breastmnist'], out_dir=out, img_size=28, protocol=proto, epochs=ep, aug_views=2, n_boot=100,
                     cache_dir=tmp_path/'c', verbose=False)
    met = read_table(out/'metrics.csv', 'metrics')
    assert len(met) == 2*2*5
    assert set(met.method) == {'mae', 'random'} and set(met.protocol) == {'fast', 'faithful'}
    assert met[met.method == 'mae'].total_params_m.iloc[0] == pytest.approx(6.0)
    assert len(list((out/'predictions').rglob('*.npz'))) == 4
    t = T1.table1(out/'metrics.csv', out)
    assert len(t) == 4 and (t.n_benchmarks == 1).all()


def test_missing_size_fails_clearly_or_upsamples():
    with pytest.raises(FileNotFoundError, match='resize_from'): B.load_benchmark('pneumoniamnist', 128)
    d = B.load_benchmark('breastmnist', 64, resize_from=28)
    assert d.upsampled and d.source_img_size == 28 and d.x['val'].shape == (78, 64, 64)
    with pytest.raises(ValueError, match='unknown benchmark'): P.probe_many([SPEC], benchmarks=['brainmnist'])


def _authors_features(model, x):
    "The authors' --global_pool features re-implemented: final norm deleted, raw patch tokens averaged, a fresh fc_norm."
    import copy
    m = copy.deepcopy(model)
    del m.norm
    fc_norm = torch.nn.LayerNorm(m.embed_dim, eps=1e-6)   # created fresh and frozen by the authors: weight 1, bias 0
    with torch.no_grad():
        t = m._pos_embed(m.patch_embed(x))
        for blk in m.blocks: t = blk(t)
        return fc_norm(t[:, m.num_prefix_tokens:].mean(1))


def test_probe_features_are_the_authors(tmp_path):
    import timm
    torch.manual_seed(0)
    src = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0, img_size=28, patch_size=7,
                            reg_tokens=2)
    with torch.no_grad(): src.norm.weight.uniform_(0.5, 2.0); src.norm.bias.normal_(0, 0.5)   # a final norm that matters
    kw = dict(patch_size=7, reg_tokens=2)
    exp = save_backbone(src, tmp_path/'exp', 'vit_tiny_patch16_224', 28, 'mae', model_kwargs=kw)
    bb = BK.load_probe_backbone(exp, 28)
    data = B.load_benchmark('breastmnist', 28)
    feats, _ = FE.cached_features(bb, data, 'val', tmp_path/'cache')       # what the probe's head receives
    ref = _authors_features(src.eval(), FE.to_input(data.x['val']))
    np.testing.assert_allclose(feats, ref.numpy(), atol=1e-5)
    old = FE.extract_features(bb.model, data.x['val'], features='normed-tokens')
    assert np.abs(old - ref.numpy()).max() > 0.1   # the earlier computation is another one


def _dinov2_block(blk, x, rate, g):
    "A timm block run as DINOv2's Block in training mode (rate > 0.1: drop_add_residual_stochastic_depth), from its source."
    for residual in (lambda t: blk.ls1(blk.attn(blk.norm1(t))), lambda t: blk.ls2(blk.mlp(blk.norm2(t)))):
        b = x.shape[0]
        subset = max(int(b * (1 - rate)), 1)
        brange = torch.randperm(b, generator=g)[:subset]
        r = residual(x[brange])
        x = torch.index_add(x.flatten(1), 0, brange, r.flatten(1), alpha=b / subset).view_as(x)
    return x


def test_dinov2_backbones_train_with_the_authors_stochastic_depth(tmp_path):
    bb = BK.load_probe_backbone(SPEC, 28, seed=0)
    blocks = bb.model.blocks
    x = torch.randn(10, 17, 192)
    with torch.no_grad():
        ref = x
        g = torch.Generator().manual_seed(5)
        for blk in blocks: ref = _dinov2_block(blk, ref, 0.3, g)
        with FE.stochastic_depth(bb.model, 0.3, torch.Generator().manual_seed(5)): got = blocks(x)
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(blocks(x), blocks(x))   # restored: deterministic again
    save_backbone(bb.model, tmp_path/'dino', 'vit_tiny_patch16_224', 28, 'dinov2', model_kwargs=dict(patch_size=7))
    dino = BK.load_probe_backbone(tmp_path/'dino', 28)
    assert (FE.probe_drop_path(dino), FE.probe_drop_path(dino, 'eval'), FE.probe_drop_path(bb)) == (0.3, 0., 0.)
    data = B.load_benchmark('breastmnist', 28)
    _, rec = P.probe_one(dino, data, protocol='faithful', epochs=1, n_boot=50)
    assert rec['drop_path'] == 0.3 and rec['backbone_mode'] == 'authors'
    views = [FE.cached_features(dino, data, 'train', tmp_path/c, 'aug-1-0', drop_path=0.3)[0] for c in ('c1', 'c2')]
    np.testing.assert_array_equal(*views)   # a view is seeded: the same stochastic depth when recomputed


@pytest.mark.parametrize('method', ['mae', 'dinov2'])
def test_fast_with_one_view_per_epoch_is_the_faithful_probe(tmp_path, method):
    m = BK.load_probe_backbone(SPEC, 28, seed=4).model
    bb = BK.load_probe_backbone(save_backbone(m, tmp_path/method, 'vit_tiny_patch16_224', 28, method,
                                             model_kwargs=dict(patch_size=7)), 28)
    data = B.load_benchmark('breastmnist', 28)
    scores = {}
    for protocol in ('faithful', 'fast'):
        _, rec = P.probe_one(bb, data, protocol=protocol, epochs=3, aug_views=-1, n_boot=20, cache_dir=tmp_path/'c',
                             out_dir=tmp_path/'o')
        with np.load(tmp_path/'o'/rec['predictions']) as z: scores[protocol] = z['y_score'], z['y_score_val']
        assert rec['drop_path'] == (0.3 if method == 'dinov2' else 0.)
    for faithful, fast in zip(scores['faithful'], scores['fast']): np.testing.assert_allclose(fast, faithful, atol=1e-6)


def test_normalisation_is_the_authors_unless_asked(tmp_path):
    m = BK.load_probe_backbone(SPEC, 28, seed=3).model
    exp = save_backbone(m, tmp_path/'exp', 'vit_tiny_patch16_224', 28, 'mae', model_kwargs=dict(patch_size=7))
    bb = BK.load_probe_backbone(exp, 28)
    assert FE.input_stats(bb) == dict(mean=(0.5,)*3, std=(0.5,)*3)
    assert FE.input_stats(bb, 'backbone')['mean'] == (0.485, 0.456, 0.406)
    for normalize in ('authors', 'backbone'):
        P.probe_many([str(exp)], benchmarks=['breastmnist'], out_dir=tmp_path/normalize, img_size=28, epochs=2, aug_views=0, n_boot=50,
                     cache_dir=tmp_path/'c', verbose=False, normalize=normalize)
    means = {n: json.loads(read_table(tmp_path/n/'probe_runs.csv').input_mean.iloc[0]) for n in ('authors', 'backbone')}
    assert means == {'authors': [0.5]*3, 'backbone': [0.485, 0.456, 0.406]}
    with pytest.raises(ValueError, match='normalize'): FE.input_stats(bb, 'imagenet')


def test_resume_skips_only_runs_with_the_same_options(tmp_path):
    kw = dict(epochs=2, aug_views=0, n_boot=50, cache_dir=tmp_path/'c', verbose=False)
    P.probe_many([SPEC], benchmarks=['breastmnist'], out_dir=tmp_path/'o', img_size=28, **kw)
    t0 = read_table(tmp_path/'o'/'probe_runs.csv').total_s.iloc[0]
    P.probe_many([SPEC], benchmarks=['breastmnist'], out_dir=tmp_path/'o', img_size=28, **kw)                           # same options: skipped
    assert read_table(tmp_path/'o'/'probe_runs.csv').total_s.iloc[0] == t0
    P.probe_many([SPEC], benchmarks=['breastmnist'], out_dir=tmp_path/'o', img_size=28, thresholds='midpoint', **kw)    # other options: re-run, replaced
    runs = read_table(tmp_path/'o'/'probe_runs.csv')
    assert len(runs) == 1 and runs.thresholds.iloc[0] == 'midpoint'
    assert len(read_table(tmp_path/'o'/'metrics.csv', 'metrics')) == 5


def test_augmentation_is_torchvisions_rotation_then_padded_crop():
    import math
    import torch.nn.functional as F
    import torchvision.transforms.functional as TF
    x = torch.as_tensor(B.load_benchmark('pneumoniamnist', 28).x['val'][:16]).float()[:, None]/255
    for deg, dx, dy in ((30., 4, -4), (-12.5, -1, 3), (3., 0, 0)):
        ref = F.pad(TF.rotate(x, deg, TF.InterpolationMode.NEAREST, fill=0), (4,)*4)[..., 4-dy:4-dy+28, 4-dx:4-dx+28]
        n = len(x)
        angle, shift_x, shift_y = (torch.full((n,), float(v)) for v in (math.radians(deg), dx, dy))
        ours = FE.rotate_shift(x, angle, shift_x, shift_y)
        torch.testing.assert_close(ours, ref, rtol=0, atol=0)


def test_probe_heads_log_tensorboard_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    P.probe_many([SPEC], benchmarks=['breastmnist'], out_dir=tmp_path/'o', img_size=28, epochs=3, aug_views=0, n_boot=50, cache_dir=tmp_path/'c',
                 verbose=False, tensorboard=True)
    runs = sorted((tmp_path/'o'/'tensorboard').glob('*/breastmnist'))
    assert len(runs) == 1
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    assert [e.step for e in events.Scalars('probe/fast/val_loss')] == [0, 1, 2]
    assert 'probe/fast/train_loss' in events.Tags()['scalars']
