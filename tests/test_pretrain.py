"Pretraining stage: exact resume after a kill (2 gloo processes under torchrun, and in-process), NaN/inf guard, CLI."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import torch

from biovfm.backbones import load_backbone
from biovfm.data import example_data_list
from biovfm import pretrain as P

ROOT = Path(__file__).resolve().parents[1]
# tiny but complete DINOv2: 16 tokens, 64 prototypes, drop path on (so the RNG state matters), 2 local crops
TINY = dict(method='dinov2', arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=4, n_prototypes=64,
            head_hidden=64, head_bottleneck=32, n_local=2, local_size=16, drop_path=0.1, max_steps=6, save_every=2, seed=3)


@pytest.fixture(scope='module')
def data_list(tmp_path_factory):
    return str(example_data_list(tmp_path_factory.mktemp('dl'), n=24, size=32))


def _torchrun(cfg, **popen):
    env = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', PYTHONPATH=str(ROOT))
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'biovfm.pretrain',
           *P.cli_args(cfg), '--no_progress']
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _descendants(pid:int) -> list[int]:
    "Process ids below `pid` (from /proc), deepest last."
    kids = {}
    for st in Path('/proc').glob('[0-9]*/stat'):
        try: f = st.read_text().rsplit(')', 1)[1].split(); kids.setdefault(int(f[1]), []).append(int(st.parent.name))
        except (OSError, IndexError, ValueError): pass
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []): out.append(c); todo.append(c)
    return out


def _finish(proc, timeout=400):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def ddp_ref(data_list, tmp_path_factory):
    "The uninterrupted 2-process DDP run every other multi-process run is compared with."
    out = tmp_path_factory.mktemp('ref')
    _finish(_torchrun(P.make_config(**TINY, data_list=data_list, out_dir=str(out), nproc=2, strategy='ddp')))
    return out


def _kill_midway(cfg, ck):
    proc, t0 = _torchrun(cfg), time.time()
    while not ck.exists() and proc.poll() is None and time.time() - t0 < 400: time.sleep(0.05)
    for pid in _descendants(proc.pid) + [proc.pid]: os.kill(pid, signal.SIGKILL)   # workers first: no clean shutdown
    proc.communicate()
    killed_at = P.load_checkpoint(ck)['step']
    assert 2 <= killed_at < 6, f"the run was not killed mid-way (checkpoint at step {killed_at})"


def _same_losses(a, b, **tol):
    for k in ('loss', 'dino_loss', 'ibot_loss', 'koleo_loss'):
        pd.testing.assert_series_equal(a[k], b[k], **tol)


def _same_backbones(a_dir, b_dir, **tol):
    a, _ = load_backbone(a_dir); b, info = load_backbone(b_dir)
    assert info['steps'] == 6 and info['method'] == 'dinov2'
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()): torch.testing.assert_close(v, w, msg=k, **tol)


def test_ddp_gloo_kill_and_resume_reproduces_losses(data_list, ddp_ref, tmp_path):
    full = pd.read_csv(ddp_ref/'log.csv')
    assert full.step.tolist() == list(range(6)) and full.loss.notna().all()
    cfg = P.make_config(**TINY, data_list=data_list, out_dir=str(tmp_path/'run'), nproc=2, strategy='ddp')
    _kill_midway(cfg, tmp_path/'run'/P.CKPT)
    _finish(_torchrun(cfg))
    resumed = pd.read_csv(tmp_path/'run'/'log.csv')
    assert resumed.step.tolist() == list(range(6))
    _same_losses(resumed, full, rtol=1e-5, atol=1e-6)
    _same_backbones(ddp_ref, tmp_path/'run')


def test_fsdp2_gloo_matches_ddp_and_resumes_exactly(data_list, ddp_ref, tmp_path):
    "FSDP2 (sharded student and teacher) with activation checkpointing: the same training as DDP, and exact resume after a kill."
    kw = dict(**TINY, data_list=data_list, nproc=2, strategy='fsdp', grad_ckpt=True)
    ref = P.make_config(**kw, out_dir=str(tmp_path/'ref'))
    out = _finish(_torchrun(ref))
    full = pd.read_csv(tmp_path/'ref'/'log.csv')
    assert full.step.tolist() == list(range(6)), out[-2000:]
    _same_losses(full, pd.read_csv(ddp_ref/'log.csv'), rtol=1e-4, atol=1e-5)   # same maths, other reduction order
    _same_backbones(ddp_ref, tmp_path/'ref', rtol=1e-4, atol=1e-5)
    ck = P.load_checkpoint(tmp_path/'ref'/P.CKPT)                                 # whole tensors, optimiser keyed by name
    assert ck['config']['strategy'] == 'fsdp' and 'backbone.vit.cls_token' in ck['optimizer']['state']
    cfg = P.make_config(**kw, out_dir=str(tmp_path/'run'))
    _kill_midway(cfg, tmp_path/'run'/P.CKPT)
    _finish(_torchrun(cfg))
    resumed = pd.read_csv(tmp_path/'run'/'log.csv')
    assert resumed.step.tolist() == list(range(6))
    _same_losses(resumed, full, rtol=1e-5, atol=1e-6)
    _same_backbones(tmp_path/'ref', tmp_path/'run')


def test_fsdp2_mae_and_strategy_switch(data_list, tmp_path):
    "MAE (frozen sin-cos position embedding) under FSDP2 trains like DDP; a DDP checkpoint continues under FSDP2."
    kw = dict(method='mae', arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=8, max_steps=4, save_every=2, seed=1,
              data_list=data_list, nproc=2)
    _finish(_torchrun(P.make_config(**kw, strategy='ddp', out_dir=str(tmp_path/'ddp'))))
    _finish(_torchrun(P.make_config(**kw, strategy='fsdp', out_dir=str(tmp_path/'fsdp'))))
    a, b = pd.read_csv(tmp_path/'ddp'/'log.csv'), pd.read_csv(tmp_path/'fsdp'/'log.csv')
    pd.testing.assert_series_equal(a.loss, b.loss, rtol=1e-4, atol=1e-5)
    # the DDP checkpoint at step 4 continued to step 6 under each strategy: same losses, so AdamW's moments came through
    shutil.copytree(tmp_path/'ddp', tmp_path/'ddp2')
    for strat, d in (('fsdp', 'ddp'), ('ddp', 'ddp2')):
        _finish(_torchrun(P.make_config(**(kw | dict(max_steps=6)), strategy=strat, out_dir=str(tmp_path/d))))
    c, c2 = pd.read_csv(tmp_path/'ddp'/'log.csv'), pd.read_csv(tmp_path/'ddp2'/'log.csv')
    assert c.step.tolist() == list(range(6)) and c.loss.notna().all()
    pd.testing.assert_series_equal(c.loss, c2.loss, rtol=1e-4, atol=1e-5)
    assert load_backbone(tmp_path/'ddp')[1]['steps'] == 6


def test_in_process_stop_and_resume_is_exact_for_mae(data_list, tmp_path):
    kw = dict(method='mae', img_size=32, batch_size=8, max_steps=4, data_list=data_list, seed=1)
    P.train(P.make_config(**kw, out_dir=str(tmp_path/'a')), progress=False)
    P.train(P.make_config(**kw, out_dir=str(tmp_path/'b')), progress=False, stop_after=2)
    assert P.load_checkpoint(tmp_path/'b'/P.CKPT)['step'] == 2
    P.train(P.make_config(**kw, out_dir=str(tmp_path/'b')), progress=False)
    a, b = pd.read_csv(tmp_path/'a'/'log.csv'), pd.read_csv(tmp_path/'b'/'log.csv')
    assert b.step.tolist() == [0, 1, 2, 3]
    pd.testing.assert_series_equal(a.loss, b.loss, rtol=1e-6, atol=1e-7)
    m, info = load_backbone(tmp_path/'b')
    assert info['total_params'] > info['backbone_params'] and not any('mask_token' in k or 'decoder' in k for k in m.state_dict())


def test_sharded_corpus_ddp_kill_and_resume_is_exact(data_list, tmp_path):
    "A data list packed into tar shards (PNG files deleted): 2 ranks read their own shards, and resume exactly after a kill."
    from biovfm.shards import write_shards
    from biovfm.data import PretrainDataset, StepSampler
    shutil.copytree(Path(data_list).parent, tmp_path/'corpus')
    sharded = tmp_path/'corpus'/'data_list.parquet'
    write_shards(sharded, max_per_shard=2, remove_files=True, progress=False)   # 12 shards: the window order is used
    dataset = PretrainDataset(sharded)
    ranks = [StepSampler(len(dataset), 2, 2, rank, 1, shards=dataset.shard_codes, window=2) for rank in (0, 1)]
    assert ranks[0].shards is not None
    read = [{int(dataset.shard_codes[k % len(dataset)]) for s in range(6) for k in r.batch(s)} for r in ranks]
    assert read[0] and read[1] and not read[0] & read[1]                      # each rank its own shards
    kw = dict(method='mae', arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=4, max_steps=6, save_every=2,
              seed=1, data_list=str(sharded), nproc=2, strategy='ddp')
    _finish(_torchrun(P.make_config(**kw, out_dir=str(tmp_path/'ref'))))
    cfg = P.make_config(**kw, out_dir=str(tmp_path/'run'))
    _kill_midway(cfg, tmp_path/'run'/P.CKPT)
    _finish(_torchrun(cfg))
    full, resumed = pd.read_csv(tmp_path/'ref'/'log.csv'), pd.read_csv(tmp_path/'run'/'log.csv')
    assert resumed.step.tolist() == list(range(6))
    pd.testing.assert_series_equal(resumed.loss, full.loss, rtol=1e-5, atol=1e-6)


def test_resume_refuses_a_different_run(data_list, tmp_path):
    kw = dict(method='mae', img_size=32, batch_size=4, max_steps=1, data_list=data_list, out_dir=str(tmp_path))
    P.train(P.make_config(**kw), progress=False)
    with pytest.raises(ValueError, match='checkpoint does not fit'):
        P.train(P.make_config(**(kw | dict(patch_size=8, max_steps=2))), progress=False)


def test_nan_guard_skips_then_stops(data_list, tmp_path, monkeypatch):
    real = P.forward_loss
    calls = {'n': 0}
    def flaky(*a, **k):
        out = real(*a, **k); calls['n'] += 1
        if calls['n'] == 2 or calls['n'] >= 4: out['loss'] = out['loss']*float('nan')
        return out
    monkeypatch.setattr(P, 'forward_loss', flaky)
    cfg = P.make_config(method='mae', img_size=32, batch_size=4, max_steps=20, max_bad_steps=3, data_list=data_list, out_dir=str(tmp_path))
    with pytest.raises(FloatingPointError, match='3 consecutive steps'):
        P.train(cfg, progress=False)
    log = pd.read_csv(tmp_path/'log.csv')
    assert log.skipped.tolist()[:5] == [0, 1, 0, 1, 1]


# checkpoint records as biovfm wrote them before the options classes (Config with every knob of both methods):
# TINY's DINOv2 run and an MAE run of the same sizes, with data_list 'DL' and out_dir 'OUT'
FLAT_RECORDS = json.loads((ROOT/'tests'/'flat_config_records.json').read_text())
MAE_TINY = dict(method='mae', img_size=32, patch_size=8, batch_size=4, max_steps=6, save_every=2, seed=3)


def test_a_flat_record_of_an_older_checkpoint_loads_and_resumes(data_list, tmp_path):
    "The flat record keeps its keys, order and values; an older checkpoint's record loads and its run resumes."
    cfg = P.make_config(**TINY, data_list='DL', out_dir='OUT')
    mae = P.make_config(**MAE_TINY, data_list='DL', out_dir='OUT')
    for config, old in ((cfg, FLAT_RECORDS['dinov2']), (mae, FLAT_RECORDS['mae'])):
        assert list(P.config_record(config).items()) == list(old.items())
        assert P.config_from_record(old) == config
    run = tmp_path/'run'
    cfg = P.make_config(**TINY, data_list=data_list, out_dir=str(run))
    P.train(cfg, progress=False, stop_after=2)
    checkpoint = P.load_checkpoint(run/P.CKPT)
    torch.save(checkpoint | dict(config=FLAT_RECORDS['dinov2'] | dict(data_list=data_list, out_dir=str(run))),
               run/P.CKPT)   # as an older biovfm wrote it
    assert P.load_pretraining_model(run)[0] == cfg
    P.train(P.make_config(**TINY, data_list=data_list, out_dir=str(run)), progress=False)
    assert pd.read_csv(run/'log.csv').step.tolist() == list(range(6))
    assert P.load_checkpoint(run/P.CKPT)['step'] == 6


def test_another_methods_knob_is_refused_and_an_older_record_of_one_still_loads():
    "Given, a knob of the other method is refused; an older record that kept one (its run ignored it) loads, warning."
    with pytest.raises(ValueError, match=r"not an option of method='mae': n_local=2 \(an option of dinov2\); "
                                         r"mae's options: mask_ratio, decoder_dim"):
        P.make_config(**MAE_TINY, n_local=2)
    old = FLAT_RECORDS['mae'] | dict(n_local=2)
    with pytest.warns(UserWarning, match=r"the record's \{'n_local': 2\} belong to another method"):
        mae = P.config_from_record(old)
    assert mae == P.make_config(**MAE_TINY, data_list='DL', out_dir='OUT')
    P.check_resumable(old, mae)   # n_local is no knob of this MAE run: nothing to compare


def test_cli_args_round_trip():
    cfg = P.make_config(**TINY, data_list='x.parquet', out_dir='o')
    args = P.cli_args(cfg)
    back = {args[i][2:]: args[i+1] for i in range(0, len(args), 2)}
    assert back['global_scale'] == '[0.32, 1.0]' and back['arch'] == cfg.arch and back['drop_path'] == '0.1'
    assert 'nproc' not in back  # torchrun owns the process count


def test_a_resumed_optimiser_keeps_this_process_implementation():
    "A checkpoint of the default AdamW resumes into the fused one make_optimizer picks (torch restores it otherwise)."
    model = torch.nn.Linear(3, 2)
    saved = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    saved.step()
    resumed = torch.optim.AdamW(model.parameters(), fused=True)
    P.load_optimizer_state(model, resumed, saved.state_dict())
    assert resumed.param_groups[0]['fused'] is True
    resumed.step()  # the fused kernel accepts the restored moments and step count
    assert torch.equal(resumed.state[model.weight]['exp_avg'], saved.state[model.weight]['exp_avg'])


def test_the_shared_head_in_one_pass_equals_two_passes():
    "DINOv2Student.heads runs a shared DINO/iBOT head once over class and masked tokens: the same outputs."
    from types import SimpleNamespace
    from lightly.models.modules import DINOv2ProjectionHead
    from biovfm.dinov2 import DINOv2Student

    torch.manual_seed(0)
    head = DINOv2ProjectionHead(input_dim=16, hidden_dim=32, bottleneck_dim=8, output_dim=24)
    class_tokens, masked_patches = torch.randn(6, 16), torch.randn(11, 16)
    dino, ibot = DINOv2Student.heads(SimpleNamespace(dino_head=head, ibot_head=head), class_tokens, masked_patches)
    torch.testing.assert_close(dino, head(class_tokens))
    torch.testing.assert_close(ibot, head(masked_patches))
    separate = SimpleNamespace(dino_head=head, ibot_head=DINOv2ProjectionHead(16, 32, 8, 24))
    _, ibot_own = DINOv2Student.heads(separate, class_tokens, masked_patches)
    torch.testing.assert_close(ibot_own, separate.ibot_head(masked_patches))
