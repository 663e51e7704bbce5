"""Issue 29: the last deviations from the official code, each checked against the official computation, and the
paper's Table 1 baselines loaded through their loaders on random-weight twins (no hub access: a fake HF cache)."""
import json
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import save_file

from biovfm import backbones as BK, features as FE
from biovfm.core import repo_root, short_arch
from biovfm.experiments import TABLE1_BASELINES, load_matrix, plan
from biovfm.pretrain import build_model, config_record, make_config, param_groups

PAPER = repo_root() / 'configs' / 'paper'
X = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


def hub_twin(monkeypatch, cache: Path, repo: str) -> Path:
    "An offline Hugging Face cache holding repo `repo` (files written by the caller into the returned folder)."
    import huggingface_hub.constants

    base = cache / f"models--{repo.replace('/', '--')}"
    snapshot = base / 'snapshots' / ('0' * 40)
    snapshot.mkdir(parents=True)
    (base / 'refs').mkdir()
    (base / 'refs' / 'main').write_text('0' * 40)
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(cache))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    return snapshot


def authors_vit_features(vit, x):
    "models_vit.py / dinov2 classifier.py with --global_pool: no final norm, patch-token mean, fresh LayerNorm."
    with torch.no_grad():
        tokens = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(x))))
        for block in vit.blocks:
            tokens = block(tokens)
        return F.layer_norm(tokens[:, vit.num_prefix_tokens :].mean(1), (vit.embed_dim,), eps=1e-6)


def spec_of(name: str) -> str:
    probe = yaml.safe_load((PAPER / 'table1' / f'{name}.probe.yaml').read_text())
    assert probe['backbone'] == TABLE1_BASELINES[name][0]
    return probe['backbone']


# 1a. the final SwiGLU ViT-H: build_dino_model('dino_vit_huge') sets drop_path_rate 0.4 (DEFAULT_DINOV2_KWARGS: 0.3)
def test_final_vit_h_probed_with_drop_path_04():
    final = yaml.safe_load((PAPER / 'final' / 'dinov2_vit_huge14_biovfm_21m.pretrain.yaml').read_text())
    backbone = BK.Backbone(torch.nn.Identity(), 'final', 'dinov2', short_arch(final['arch']), 0, 0, 'final')
    assert FE.probe_drop_path(backbone) == 0.4
    large = BK.Backbone(torch.nn.Identity(), 'l', 'dinov2', short_arch('vit_large_patch16_224'), 0, 0, 'l')
    assert FE.probe_drop_path(large) == 0.3


# 1c. the reference preset gives what configs/paper states, for every pretraining run
MACHINE = {'data_list', 'nproc', 'num_workers', 'seed', 'save_every', 'resume', 'precision', 'strategy', 'grad_ckpt'}


@pytest.mark.parametrize('path', sorted(PAPER.rglob('*.pretrain.yaml')), ids=lambda p: p.stem)
def test_reference_preset_equals_paper_configs(path):
    run = yaml.safe_load(path.read_text())
    given = dict(
        method=run['method'], arch=run['arch'], img_size=run['img_size'], batch_size=run['batch_size'],
        max_steps=run['max_steps'], nproc=run['nproc'], preset='reference',
    )
    cfg = make_config(**given)
    for key, value in run.items():
        if key not in MACHINE:
            assert config_record(cfg)[key] == pytest.approx(value), f"{path.name}: {key}"


# 1d. MAE's optimiser groups: timm 0.3.2 optim_factory.add_weight_decay as main_pretrain.py calls it
def mae_add_weight_decay(model):
    "Names without decay and with decay, by MAE's rule (skip_list empty in main_pretrain.py)."
    no_decay, decay = set(), set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue  # frozen weights
        if len(param.shape) == 1 or name.endswith('.bias'):
            no_decay.add(name)
        else:
            decay.add(name)
    return no_decay, decay


def test_mae_weight_decay_groups_equal_maes_rule():
    cfg = make_config(method='mae', img_size=32, patch_size=8, max_steps=4, batch_size=4)
    model, _ = build_model(cfg)
    groups = param_groups(model, cfg)
    ours_decay = {n for g in groups if g['wd_mult'] == 1.0 for n in g['names']}
    ours_no_decay = {n for g in groups if g['wd_mult'] == 0.0 for n in g['names']}
    no_decay, decay = mae_add_weight_decay(model)
    assert (ours_no_decay, ours_decay) == (no_decay, decay)
    assert {'backbone.vit.cls_token', 'decoder.mask_token'} <= decay


# 1b. BiomedCLIP: the authors' trunk.reset_classifier(n, global_pool='avg')
def write_biomedclip(folder: Path, trunk, timm_name: str):
    state = {f'visual.trunk.{k}': v.contiguous() for k, v in trunk.state_dict().items()}
    state['text.proj'] = torch.zeros(2, 2)  # the text tower is ignored
    save_file(state, str(folder / 'open_clip_model.safetensors'))
    config = {'model_cfg': {'vision_cfg': {'timm_model_name': timm_name}}}
    (folder / 'open_clip_config.json').write_text(json.dumps(config))


def test_biomedclip_features_are_the_authors_timm_avg_pool(tmp_path, monkeypatch):
    torch.manual_seed(0)
    trunk = timm.create_model('vit_base_patch16_224', num_classes=0)
    with torch.no_grad():  # a pretrained final norm that matters
        trunk.norm.weight.uniform_(0.5, 2.0)
        trunk.norm.bias.normal_(0, 0.5)
    spec = spec_of('biomedclip')
    write_biomedclip(hub_twin(monkeypatch, tmp_path, spec.split(':', 1)[1]), trunk, 'vit_base_patch16_224')
    backbone = BK.load_probe_backbone(spec, img_size=224)
    official = trunk.eval()
    official.reset_classifier(0, global_pool='avg')
    with torch.no_grad():
        ours, theirs = BK.pool_features(backbone.model, X), official(X)
    assert ours.shape == (2, 768)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert not torch.allclose(ours, authors_vit_features(official, X), atol=1e-2)  # not the MAE/DINOv2 path
    head = FE.LinearHead(768, 3)
    assert [type(m).__name__ for m in head] == ['BatchNorm1d', 'Linear']  # no extra LayerNorm


# 2. Table 1 baselines: one probe config each, loaded through its loader from the (fake) Hugging Face cache
def test_table1_configs_listed_by_the_plan():
    runs = {r.name: r for r in load_matrix(PAPER)}
    names = {f'table1/{n}' for n in ('in21k_vit_base', 'in21k_vit_large', 'rad_dino', 'biomedclip', 'biomedgpt')}
    assert names <= set(runs)
    assert all(runs[n].pretrain is None and runs[n].probe['img_size'] == 224 for n in names)
    table = plan('paper', runs_dir=Path('/nonexistent-runs')).set_index('run')
    assert set(table.loc[sorted(names), 'state']) == {'not started'}


@pytest.mark.parametrize('name,dim', [('in21k_vit_base', 768), ('in21k_vit_large', 1024)])
def test_in21k_vits_load_from_timms_hub_path(tmp_path, monkeypatch, name, dim):
    spec = spec_of(name)
    timm_name = spec.split(':', 1)[1]
    hub_id = timm.models.get_pretrained_cfg(timm_name).hf_hub_id
    assert hub_id and hub_id.startswith('timm/')  # the real download path: timm's own hub weights
    torch.manual_seed(1)
    twin = timm.create_model(timm_name.split('.')[0], num_classes=0)
    folder = hub_twin(monkeypatch, tmp_path, hub_id if hub_id.count('/') == 1 else f'timm/{timm_name}')
    save_file({k: v.contiguous() for k, v in twin.state_dict().items()}, str(folder / 'model.safetensors'))
    backbone = BK.load_probe_backbone(spec, img_size=224)
    assert (backbone.method, backbone.arch) == ('timm', short_arch(timm_name))
    with torch.no_grad():
        features = BK.pool_features(backbone.model, X)
    assert features.shape == (2, dim)
    torch.testing.assert_close(features, authors_vit_features(twin.eval(), X), atol=1e-5, rtol=0)


def test_rad_dino_loads_from_the_hub_path(tmp_path, monkeypatch):
    transformers = pytest.importorskip('transformers')
    spec = spec_of('rad_dino')
    config = transformers.Dinov2Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, patch_size=14,
        image_size=56,
    )
    torch.manual_seed(2)
    hf = transformers.Dinov2Model(config).eval()
    hf.save_pretrained(hub_twin(monkeypatch, tmp_path, spec.split(':', 1)[1]))
    backbone = BK.load_probe_backbone(spec, img_size=56)
    x = X[:, :, :56, :56]
    with torch.no_grad():
        features = BK.pool_features(backbone.model, x)
        raw = hf(pixel_values=x, output_hidden_states=True).hidden_states[-1][:, 1:].mean(1)
    assert features.shape == (2, 64)
    torch.testing.assert_close(features, F.layer_norm(raw, (64,), eps=1e-6), atol=1e-5, rtol=0)


def test_biomedgpt_image_encoder_loads_from_the_hub_path(tmp_path, monkeypatch):
    spec = spec_of('biomedgpt')
    torch.manual_seed(3)
    resnet = timm.create_model('resnet101', num_classes=0).eval()
    state = {f'encoder.embed_images.{k}': v for k, v in resnet.state_dict().items() if not k.startswith('layer4.')}
    state['encoder.image_proj.weight'] = torch.zeros(768, 1024)  # the rest of OFA's encoder is not loaded
    save_file(state, str(hub_twin(monkeypatch, tmp_path, spec.split(':', 1)[1]) / 'model.safetensors'))
    backbone = BK.load_probe_backbone(spec, img_size=224)
    assert (backbone.method, backbone.arch) == ('biomedgpt', 'resnet101')
    with torch.no_grad():
        features = BK.pool_features(backbone.model, X)
        stem = resnet.maxpool(resnet.act1(resnet.bn1(resnet.conv1(X))))
        grid = resnet.layer3(resnet.layer2(resnet.layer1(stem)))
    assert grid.shape == (2, 1024, 14, 14)
    torch.testing.assert_close(features, F.layer_norm(grid.mean((2, 3)), (1024,), eps=1e-6), atol=1e-5, rtol=0)


# 3. the exported folder: timm's `local-dir:` model computes the probe's features; provenance names no local path
TINY_RUNS = dict(
    dinov2=dict(n_prototypes=64, head_hidden=64, head_bottleneck=32, n_local=2, local_size=16),
    mae=dict(),
)


@pytest.fixture(scope='module')
def two_step_runs(tmp_path_factory):
    "A DINOv2 and an MAE ViT-T/8 at 32 px pretrained for 2 steps: their data list, run folders and configs."
    from biovfm.data import example_data_list
    from biovfm.pretrain import train

    root = tmp_path_factory.mktemp('exported')
    data_list = example_data_list(root / 'data', n=16, size=32)
    runs, configs = {}, {}
    for method, sizes in TINY_RUNS.items():
        configs[method] = cfg = make_config(
            method=method, arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=4, max_steps=2, save_every=10,
            eval_every=0, data_list=str(data_list), out_dir=str(root / 'runs' / method), **sizes,
        )
        runs[method] = train(cfg, progress=False)
    return data_list, runs, configs


@pytest.mark.parametrize('method', list(TINY_RUNS))
def test_timm_local_dir_gives_the_probe_features(two_step_runs, method):
    _, runs, _ = two_step_runs
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    probed = BK.load_probe_backbone(str(runs[method]), img_size=32).model
    with_timm = timm.create_model(f'local-dir:{runs[method]}', pretrained=True).eval()
    with torch.no_grad():
        expected = BK.pool_features(probed, images, 'authors')
        torch.testing.assert_close(with_timm(images), expected, atol=1e-5, rtol=0)
        pre_logits = with_timm.forward_head(with_timm.forward_features(images), pre_logits=True)
        torch.testing.assert_close(pre_logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(expected, authors_vit_features(probed, images), atol=1e-5, rtol=0)
    config = json.loads((runs[method] / 'config.json').read_text())
    assert config['global_pool'] == 'avg' and config['model_args'] | dict(global_pool='avg', fc_norm=True) == config['model_args']
    assert isinstance(with_timm.norm, torch.nn.Identity)


@pytest.mark.parametrize('method', list(TINY_RUNS))
def test_the_probe_reads_the_trained_backbone_from_the_export(two_step_runs, method):
    "exported_backbone: the same features as the backbone in the checkpoint, with the 'authors' and the 'normed-tokens' pooling."
    from biovfm.pretrain import CKPT, load_checkpoint, make_vit

    _, runs, configs = two_step_runs
    checkpoint = load_checkpoint(runs[method] / CKPT)
    trained, _ = make_vit(configs[method], drop_path=0.0)
    state = checkpoint['teacher'] or checkpoint['model']
    prefix = 'backbone.vit.'
    trained.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    trained.eval()
    probed = BK.load_probe_backbone(str(runs[method]), img_size=32).model
    assert probed.state_dict().keys() == trained.state_dict().keys()
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for features in BK.FEATURES:
            torch.testing.assert_close(BK.pool_features(probed, images, features), BK.pool_features(trained, images, features),
                                       atol=0, rtol=0)


def test_exports_name_the_data_list_by_md5_and_relative_path(two_step_runs):
    import os
    import re

    from biovfm.core import file_md5

    data_list, runs, _ = two_step_runs
    home = os.path.expanduser('~')

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []

    for run in runs.values():
        for name in ('config.json', 'backbone.json'):
            texts = strings(json.loads((run / name).read_text()))
            local = [t for t in texts if t.startswith(('/', '\\', '~')) or re.match(r'[A-Za-z]:', t) or home in t]
            assert not local, f"{run / name}: local paths {local}"
        info = json.loads((run / 'backbone.json').read_text())
        assert info['data_list_md5'] == file_md5(data_list)
        assert (run / info['data_list']).resolve() == Path(data_list).resolve()
