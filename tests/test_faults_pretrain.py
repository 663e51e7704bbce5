"Pretraining and backbone loading under faults: no silent wrong result, no lost run, every bad input named."
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import torch

from biovfm.backbones import load_backbone, save_backbone
from biovfm.data import example_data_list
from biovfm import pretrain as P

ROOT = Path(__file__).resolve().parents[1]
TINY_MAE = dict(method='mae', arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=4, max_steps=2,
                save_every=2, seed=0)


@pytest.fixture(scope='module')
def data_list(tmp_path_factory):
    return str(example_data_list(tmp_path_factory.mktemp('dl'), n=24, size=32))


@pytest.fixture(scope='module')
def finished_run(data_list, tmp_path_factory):
    "A finished 2-step MAE run; tests work on copies of it."
    out_dir = tmp_path_factory.mktemp('finished')
    P.train(tiny_config(data_list, out_dir), progress=False)
    return out_dir


def tiny_config(data_list, out_dir, **changes) -> P.Config:
    return P.make_config(**(TINY_MAE | dict(data_list=str(data_list), out_dir=str(out_dir)) | changes))


def copy_run(run_dir:Path, tmp_path:Path) -> Path:
    copy_dir = tmp_path/'run'
    shutil.copytree(run_dir, copy_dir)
    return copy_dir


def copy_data_list(data_list, tmp_path:Path) -> Path:
    "A copy of the data list's folder (list + images); returns the copied list."
    copy_dir = tmp_path/'data_copy'
    shutil.copytree(Path(data_list).parent, copy_dir)
    return copy_dir/Path(data_list).name


# 1. resume='never' into a used run folder
def test_resume_never_moves_the_previous_run_aside(data_list, finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    old_checkpoint = (run_dir/P.CKPT).read_bytes()
    old_log = pd.read_csv(run_dir/'log.csv')
    P.train(tiny_config(data_list, run_dir, resume='never', max_steps=1), progress=False)
    previous = sorted((run_dir/'previous').iterdir())
    assert len(previous) == 1
    assert (previous[0]/P.CKPT).read_bytes() == old_checkpoint
    pd.testing.assert_frame_equal(pd.read_csv(previous[0]/'log.csv'), old_log)
    assert (previous[0]/'model.safetensors').exists() and (previous[0]/'backbone.json').exists()
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 1
    assert pd.read_csv(run_dir/'log.csv').step.tolist() == [0]
    assert str(previous[0]) in capsys.readouterr().out
    # a second fresh start keeps both earlier runs
    P.train(tiny_config(data_list, run_dir, resume='never', max_steps=1), progress=False)
    assert len(list((run_dir/'previous').iterdir())) == 2


# 2. two processes on one out_dir
def test_second_process_on_the_same_out_dir_fails_at_once(data_list, tmp_path):
    run_dir = tmp_path/'run'
    run_dir.mkdir()
    holder_code = ("import sys, time\nfrom biovfm.pretrain import run_lock\n"
                   "with run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(300)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    holder = subprocess.Popen([sys.executable, '-c', holder_code, str(run_dir)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_line = holder.stdout.readline().strip()
        assert first_line == 'held', first_line
        started = time.time()
        with pytest.raises(RuntimeError) as error:
            P.train(tiny_config(data_list, run_dir), progress=False)
        assert time.time() - started < 60
        assert str(run_dir) in str(error.value) and f'pid {holder.pid}' in str(error.value)
        assert not (run_dir/P.CKPT).exists()
    finally:
        holder.kill()
        holder.wait()
    # a killed holder leaves no stale lock: the next run starts
    P.train(tiny_config(data_list, run_dir, max_steps=1), progress=False)
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 1


# 3. max_steps=0
def test_max_steps_zero_refuses_a_new_run(data_list, tmp_path):
    with pytest.raises(ValueError, match='max_steps=0'):
        P.train(tiny_config(data_list, tmp_path/'new', max_steps=0), progress=False)
    assert not (tmp_path/'new'/'backbone.json').exists() and not (tmp_path/'new'/P.CKPT).exists()


def test_max_steps_zero_on_an_existing_run_reports_and_changes_nothing(data_list, finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    before = {name: (run_dir/name).read_bytes() for name in (P.CKPT, 'log.csv', 'model.safetensors')}
    assert P.train(tiny_config(data_list, run_dir, max_steps=0), progress=False) == run_dir
    assert 'nothing to do' in capsys.readouterr().out
    assert {name: (run_dir/name).read_bytes() for name in before} == before


# 4. temporary files of a killed save
def test_stale_temporary_files_are_removed_on_the_next_start(data_list, finished_run, tmp_path, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    stale = [run_dir/'.checkpoint.pt.k1ll3d.tmp', run_dir/'.model.safetensors.x9y8.tmp']
    for path in stale: path.write_bytes(b'half a file')
    (run_dir/'notes.tmp').write_text('not ours')
    P.train(tiny_config(data_list, run_dir), progress=False)
    assert not any(path.exists() for path in stale)
    assert (run_dir/'notes.tmp').exists()
    assert '.checkpoint.pt.k1ll3d.tmp' in capsys.readouterr().out


# 5. resuming on other data
def test_resume_refuses_another_data_list_file(data_list, finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    other_list = copy_data_list(data_list, tmp_path)
    table = pd.read_parquet(other_list)
    table.iloc[:20].to_parquet(other_list, index=False)
    with pytest.raises(ValueError, match='data_list') as error:
        P.train(tiny_config(other_list, run_dir, max_steps=3), progress=False)
    assert str(Path(data_list).resolve()) in str(error.value) and str(other_list.resolve()) in str(error.value)
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 2


def test_resume_refuses_a_changed_data_list_and_accepts_an_identical_copy(data_list, tmp_path):
    own_list = copy_data_list(data_list, tmp_path)
    run_dir = tmp_path/'run'
    P.train(tiny_config(own_list, run_dir, max_steps=1), progress=False)
    stored = P.load_checkpoint(run_dir/P.CKPT)['data_list']
    assert stored['path'] == str(own_list.resolve()) and len(stored['md5']) == 32
    identical = tmp_path/'identical'/own_list.name
    shutil.copytree(own_list.parent, identical.parent)
    table = pd.read_parquet(own_list)
    table.iloc[::-1].to_parquet(own_list, index=False)            # same images, other content (row order)
    with pytest.raises(ValueError, match='data_list') as error:
        P.train(tiny_config(own_list, run_dir, max_steps=2), progress=False)
    assert stored['md5'] in str(error.value) and str(own_list.resolve()) in str(error.value)
    P.train(tiny_config(identical, run_dir, max_steps=2), progress=False)   # a byte-identical copy is the same data
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 2


# 6. unreadable images, batch_size 0
@pytest.mark.filterwarnings('ignore:PretrainDataset')
def test_all_images_unreadable_is_a_clear_error(data_list, tmp_path):
    broken_list = copy_data_list(data_list, tmp_path)
    for relative_path in pd.read_parquet(broken_list).path:
        (broken_list.parent/relative_path).write_bytes(os.urandom(200))
    with pytest.raises(RuntimeError, match='could be read') as error:
        P.train(tiny_config(broken_list, tmp_path/'run'), progress=False)
    assert str(broken_list) in str(error.value)


@pytest.mark.parametrize('name', ['batch_size', 'save_every', 'nproc', 'img_size'])
def test_zero_sizes_are_refused_by_name(name):
    with pytest.raises(ValueError, match=f'{name}=0'):
        P.make_config(**(TINY_MAE | {name: 0}))


# 7. corrupt checkpoints
def _corrupt(path:Path, kind:str, good:bytes):
    if kind == 'empty': path.write_bytes(b'')
    elif kind == 'truncated': path.write_bytes(good[:len(good)//2])
    elif kind == 'random': path.write_bytes(os.urandom(4096))
    else: torch.save({'step': Path('not/a/tensor')}, path)     # needs unpickling: weights_only refuses it


@pytest.mark.parametrize('kind', ['empty', 'truncated', 'random', 'pickled_object'])
def test_corrupt_checkpoint_is_named_and_never_unpickled(data_list, finished_run, tmp_path, kind):
    run_dir = tmp_path/'run'
    run_dir.mkdir()
    _corrupt(run_dir/P.CKPT, kind, (finished_run/P.CKPT).read_bytes())
    for attempt in (lambda: P.load_checkpoint(run_dir/P.CKPT),
                    lambda: P.train(tiny_config(data_list, run_dir, max_steps=3), progress=False)):
        with pytest.raises(ValueError, match='not a valid checkpoint') as error:
            attempt()
        assert str(run_dir/P.CKPT) in str(error.value)
        messages = str(error.value) + str(error.value.__cause__ or '') + str(error.value.__context__ or '')
        assert 'weights_only=False' not in messages


def test_a_torch_file_that_is_not_a_checkpoint_is_named(tmp_path):
    torch.save({'weights': torch.ones(2)}, tmp_path/P.CKPT)
    with pytest.raises(ValueError, match='not a valid checkpoint') as error:
        P.load_checkpoint(tmp_path/P.CKPT)
    assert 'step' in str(error.value)


# 8. load_backbone
def _export(out_dir:Path, timm_arch:str='vit_tiny_patch16_224') -> Path:
    import timm
    model = timm.create_model(timm_arch, pretrained=False, num_classes=0, img_size=32, patch_size=8)
    return save_backbone(model, out_dir, timm_arch, 32, 'mae', model_kwargs=dict(patch_size=8))


def test_backbone_of_another_size_is_named(tmp_path):
    small = _export(tmp_path/'small', 'vit_small_patch16_224')
    tiny = _export(tmp_path/'tiny')
    shutil.copy(tiny/'backbone.json', small/'backbone.json')          # small weights, tiny description
    with pytest.raises(ValueError, match='does not fit') as error:
        load_backbone(small)
    assert str(small/'model.safetensors') in str(error.value) and 'shape' in str(error.value)


def test_truncated_safetensors_is_named(tmp_path):
    folder = _export(tmp_path/'bb')
    weights = (folder/'model.safetensors').read_bytes()
    (folder/'model.safetensors').write_bytes(weights[:len(weights)//2])
    with pytest.raises(ValueError) as error:
        load_backbone(folder)
    assert str(folder/'model.safetensors') in str(error.value)


BROKEN_JSON = ['{"timm_name": "vit_tiny_patch16_224", "img_',                       # cut short
               '{"timm_name": "vit_tiny_patch16_224"}',                               # fields missing
               '[1, 2]',                                                              # not an object
               '{"timm_name": "no_such_model", "img_size": 32, "model_kwargs": {}}']  # unknown model


@pytest.mark.parametrize('text', BROKEN_JSON)
def test_broken_backbone_json_is_named(tmp_path, text):
    folder = _export(tmp_path/'bb')
    (folder/'backbone.json').write_text(text)
    with pytest.raises(ValueError) as error:
        load_backbone(folder)
    assert str(folder/'backbone.json') in str(error.value)


def test_nan_weights_are_refused_with_the_tensor_name(tmp_path):
    from safetensors.torch import load_file, save_file
    folder = _export(tmp_path/'bb')
    weights = load_file(folder/'model.safetensors')
    weights['blocks.3.mlp.fc1.weight'][0, 0] = float('nan')
    save_file(weights, folder/'model.safetensors')
    with pytest.raises(ValueError, match='blocks.3.mlp.fc1.weight') as error:
        load_backbone(folder)
    assert str(folder/'model.safetensors') in str(error.value)


def test_a_finished_run_loads_with_timm_alone(finished_run):
    "The run folder is a timm folder: `local-dir:` loads the exported weights (checkpoint.pt beside them is ignored)."
    import timm
    model, info = load_backbone(finished_run)
    with_timm = timm.create_model(f'local-dir:{finished_run}', pretrained=True).eval()
    images = torch.randn(2, 3, info['img_size'], info['img_size'])
    from biovfm.backbones import pool_features
    with torch.no_grad():   # timm alone computes the paper's probe features: mean raw patch tokens + parameter-free LN
        torch.testing.assert_close(with_timm(images), pool_features(model.eval(), images, 'authors'), atol=1e-5, rtol=0)
    config = json.loads((finished_run/'config.json').read_text())
    assert config['biovfm']['method'] == info['method'] and config['pretrained_cfg']['mean'] == info['mean']
    assert not (finished_run/'backbone.safetensors').exists()   # one weights file: timm refuses two


def test_tensorboard_events_mirror_the_log_across_a_resume(data_list, tmp_path):
    "tensorboard=True: the log's scalars as events; a resumed run's redone steps are purged, not duplicated."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run_dir = tmp_path/'tb'
    P.train(tiny_config(data_list, run_dir, max_steps=3, save_every=2, tensorboard=True), progress=False)
    P.train(tiny_config(data_list, run_dir, max_steps=5, save_every=2, tensorboard=True), progress=False)
    events = EventAccumulator(str(run_dir/'tensorboard'))
    events.Reload()
    log = pd.read_csv(run_dir/'log.csv')
    losses = {e.step: e.value for e in events.Scalars('pretrain/loss')}
    assert sorted(losses) == log.step.tolist() == [0, 1, 2, 3, 4]
    assert [losses[s] for s in log.step] == pytest.approx(log.loss.tolist(), rel=1e-6)
    assert {'pretrain/lr', 'pretrain/grad_norm', 'pretrain/mae_loss'} <= set(events.Tags()['scalars'])


def test_paths_given_as_path_objects_still_resume(data_list, tmp_path):
    "A data list / out_dir given as pathlib.Path (as example_data_list returns) is stored as str: the checkpoint "
    "stays loadable with weights_only=True, so the run resumes (it raised UnpicklingError before)."
    cfg = P.make_config(**(TINY_MAE | dict(data_list=Path(data_list), out_dir=tmp_path/'run', max_steps=1)))
    assert isinstance(cfg.data_list, str) and isinstance(cfg.out_dir, str)
    run_dir = P.train(cfg, progress=False)
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 1
    config, model = P.load_pretraining_model(run_dir)
    assert config.data_list == str(data_list) and not model.training
    P.train(P.make_config(**(TINY_MAE | dict(data_list=Path(data_list), out_dir=tmp_path/'run', max_steps=2))),
            progress=False)
    assert P.load_checkpoint(run_dir/P.CKPT)['step'] == 2
