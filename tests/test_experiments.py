"""The CPU twin of the paper's matrix, end to end through the same path as the real runs:
curation -> pretraining -> export -> probing -> collection -> scaling -> figures; killed midway, a rerun
finishes only what was missing."""
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from biovfm.core import SCHEMAS
from biovfm.experiments import load_matrix, matrix_dir, plan, collect, analyse, run_state, slurm_scripts, corpus_plan

BIN = Path(sys.executable).parent
# ~3.5 min on 2 idle cores (curation, 4 pretraining runs, 6 probes, kill + rerun, collection, scaling, figures, report)

def _cli(*args, **kw):
    return subprocess.Popen([str(BIN/'biovfm-experiments'), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, **kw)

@pytest.fixture(scope='module')
def twin(tmp_path_factory):
    runs = tmp_path_factory.mktemp('twin_runs')
    # start the whole twin, kill it once the first run has been probed
    p = _cli('run', 'cpu_twin', '--runs-dir', str(runs))
    first = runs/'model_scaling'/'dinov2_vit_small'/'probe'/'metrics.csv'
    t0 = time.time()
    while not first.exists() and p.poll() is None and time.time() - t0 < 900: time.sleep(1)
    assert first.exists(), f"the first run never finished:\n{p.stdout.read() if p.poll() is not None else ''}"
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    mtime = first.stat().st_mtime
    states = plan('cpu_twin', runs)
    assert (states.state == 'probed').sum() >= 1 and (states.state != 'probed').any(), states
    # rerun: finishes what was missing, leaves what was done
    p = _cli('run', 'cpu_twin', '--runs-dir', str(runs)); out, _ = p.communicate(timeout=1500)
    assert p.returncode == 0, out
    assert '[model_scaling/dinov2_vit_small] probed: nothing to do' in out
    assert first.stat().st_mtime == mtime
    return runs

def test_twin_runs_all_finish(twin):
    st = plan('cpu_twin', twin)
    assert list(st.state) == ['probed']*len(st), st
    assert corpus_plan('cpu_twin', twin).to_dict('records') == [
        dict(corpus='data/twin', state='built', folder=str(twin/'data'/'twin'))]
    p = _cli('plan', 'cpu_twin', '--runs-dir', str(twin))
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0 and 'data/twin' in out and 'model_scaling/mae_vit_tiny' in out, out

def test_changed_settings_are_refused_not_reused(twin, tmp_path):
    "A recipe changed after its run finished: launch refuses that run by name and key instead of reusing it."
    import shutil, yaml
    changed = tmp_path/'cpu_twin_changed'
    shutil.copytree(matrix_dir('cpu_twin'), changed)
    cfg = changed/'model_scaling'/'mae_vit_tiny.pretrain.yaml'
    settings = yaml.safe_load(cfg.read_text())
    cfg.write_text(yaml.safe_dump(settings | dict(max_steps=settings['max_steps'] + 1)))
    probe_cfg = changed/'model_scaling'/'dinov2_vit_tiny.probe.yaml'  # a probe-only change: its pretraining stays
    probe_settings = yaml.safe_load(probe_cfg.read_text())
    probe_cfg.write_text(yaml.safe_dump(probe_settings | dict(epochs=probe_settings['epochs'] + 1)))
    before = {f: f.stat().st_mtime for f in twin.rglob('*') if f.is_file()}
    states = plan(str(changed), twin)
    assert states.set_index('run').state.to_dict()['model_scaling/mae_vit_tiny'] == 'settings changed', states
    p = _cli('run', str(changed), '--runs-dir', str(twin))
    out, _ = p.communicate(timeout=600)
    assert p.returncode != 0, out
    assert f"max_steps: {settings['max_steps']} -> {settings['max_steps'] + 1}" in out, out
    assert 'move that folder away' in out, out
    assert f"{twin/'model_scaling'/'dinov2_vit_tiny'/'probe'} was made (epochs: " in out, out
    # results of the old settings are not collected under the new ones, nor batch scripts written over them
    p = _cli('collect', str(changed), '--runs-dir', str(twin))
    out, _ = p.communicate(timeout=600)
    assert p.returncode != 0 and 'collect refused' in out and 'model_scaling/mae_vit_tiny' in out, out
    with pytest.raises(ValueError, match=r"slurm_scripts refused: .*max_steps: "):
        slurm_scripts(str(changed), twin, tmp_path/'slurm')
    assert not (tmp_path/'slurm').exists()
    assert {f: f.stat().st_mtime for f in twin.rglob('*') if f.is_file()} == before  # nothing ran, nothing touched

def test_twin_exports_loadable_backbones(twin):
    from biovfm.backbones import load_backbone
    import torch
    for r in load_matrix(matrix_dir('cpu_twin')):
        if r.pretrain is None: continue
        m, info = load_backbone(twin/r.name/'pretrain')
        assert info['method'] == r.pretrain['method'] and info['steps'] >= r.pretrain['max_steps']
        x = torch.randn(2, 3, r.pretrain['img_size'], r.pretrain['img_size'])
        assert m(x).shape[0] == 2

def test_twin_collect_scaling_figures(twin, tmp_path):
    df = collect('cpu_twin', twin, tmp_path/'own')
    assert set(SCHEMAS['metrics']) <= set(df.columns)
    assert df['run'].nunique() == 6 and set(df.metric) >= {'auc', 'acc'}
    assert set(df.method) == {'dinov2', 'mae', 'random'}
    figs = analyse(tmp_path/'own')
    slopes = pd.read_csv(tmp_path/'own'/'scaling'/'slopes.csv')
    assert set(slopes.method) >= {'dinov2', 'mae'} and 'mean' in set(slopes.benchmark)
    assert any(figs.glob('fig2a*.png')) and any(figs.glob('fig3*.png'))
    # the demo's report, written from the twin's files: verdicts against the random baseline of each size
    from biovfm.demo import write_report, compare_to_random
    runs = load_matrix(matrix_dir('cpu_twin'))
    cmp = compare_to_random(tmp_path/'own', runs, n_boot=200)
    assert len(cmp) == 4 and set(cmp.benchmark) == {'breastmnist'}
    assert (cmp.delta_lo <= cmp.delta).all() and (cmp.delta <= cmp.delta_hi).all()
    rep = write_report(tmp_path, runs, runs_dir=twin, results=tmp_path/'own', corpus='twin').read_text()
    for part in ('## Verdict', '## Data', '## Pretraining', '## Probing', '## Timings', 'fig2a'):
        assert part in rep, part
    assert (twin/'timings.csv').exists() and 'model_scaling/mae_vit_tiny' in pd.read_csv(twin/'timings.csv').step.tolist()


def test_headless_runs_a_stage_notebook_without_its_lessons(tmp_path):
    "`papermill headless:nbs/03_pretrain.ipynb ...` (the entry point biovfm registers): the run alone, recorded."
    import json
    nbs = Path(__file__).resolve().parents[1]/'nbs'
    executed = tmp_path/'03_pretrain.ipynb'
    cmd = [str(BIN/'papermill'), '-k', 'python3', '--cwd', str(nbs), f"headless:{nbs/'03_pretrain.ipynb'}", str(executed),
           '-p', 'out_dir', str(tmp_path/'run'), '-p', 'max_steps', '2', '-p', 'method', 'mae']
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    sources = [''.join(c['source']) for c in json.loads(executed.read_text())['cells']]
    assert not any('lesson_config' in s or 'learn_dirs' in s for s in sources)   # no lesson ran
    assert any(s.startswith('run_config = dict(params)') for s in sources)
    assert pd.read_csv(tmp_path/'run'/'log.csv').step.tolist() == [0, 1]
    refused = subprocess.run(cmd[:6] + [str(tmp_path/'x.ipynb'), '-p', 'max_step', '2'], capture_output=True, text=True)
    assert refused.returncode != 0 and "unknown parameter(s) ['max_step']" in refused.stderr + refused.stdout
