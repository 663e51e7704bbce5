"Curation stage: multiprocess, sharding, kill & resume, corrupt inputs (what is awkward in a notebook)."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from biovfm.core import SCHEMAS, data_dir, repo_root
from biovfm.curate import curate, merge, read_table, plan_jobs, assign_chunks
from biovfm.testing import make_corrupt_inputs

RAW = data_dir('raw')
SMALL = ['ct/pydicom/CT_small.dcm', 'mr/pydicom/MR_small.dcm', 'mr/nipy/anatomical.nii.gz', 'microscopy/scikit-image/cell.png',
         'ultrasound/pydicom-data/color-pl.dcm', 'mr/dipy/aniso_vox.nii.gz']

def _raw(tmp, n_vol=0):
    "A raw folder: corrupt files, a few small real files, and `n_vol` synthetic volumes."
    r = make_corrupt_inputs(tmp/'raw')
    if RAW is not None:
        for f in SMALL:
            (r/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy(RAW/f, r/f)
    if n_vol:
        import nibabel as nib
        (r/'mr'/'synth').mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n_vol):
            a = np.zeros((48, 48, 40), np.float32); a[8:40, 8:40, 5:35] = rng.random((32, 32, 30)) * 100 + i
            nib.save(nib.Nifti1Image(a, np.diag([1.0, 1.0, 1.5, 1])), str(r/'mr'/'synth'/f'v{i:02d}.nii.gz'))
    return r

def _dl(out): return pd.read_parquet(Path(out)/'data_list.parquet').drop(columns=[])

def _canon(df): return df.drop(columns=['path']).sort_values(['src', 'view', 'slice_index', 'volume']).reset_index(drop=True)

def test_workers_and_shards_give_the_same_corpus(tmp_path):
    r = _raw(tmp_path, n_vol=3)
    s1 = curate(raw_dir=r, out_dir=tmp_path/'w1', workers=1, chunk_jobs=2, benchmarks=(), progress=False)
    s2 = curate(raw_dir=r, out_dir=tmp_path/'w2', workers=2, chunk_jobs=2, benchmarks=(), progress=False)
    a, b = _dl(tmp_path/'w1'), _dl(tmp_path/'w2')
    assert list(a.columns[:len(SCHEMAS['data_list'])]) == SCHEMAS['data_list']
    pd.testing.assert_frame_equal(a, b)  # same paths too: the layout depends on the plan only
    assert s1['images'] == s2['images'] > 0
    # two shards run separately (as two machines would), then merged
    sharded = dict(raw_dir=r, out_dir=tmp_path/'sh', num_shards=2, chunk_jobs=2, benchmarks=())
    assert curate(shard=0, progress=False, **sharded) is None
    s = curate(shard=1, progress=False, **sharded)
    pd.testing.assert_frame_equal(_canon(_dl(tmp_path/'sh')), _canon(a))
    plan = pd.read_parquet(tmp_path/'sh'/'plan.parquet'); assert set(plan['shard']) == {0, 1}

def test_corrupt_inputs_are_rejected_with_reasons(tmp_path):
    r = _raw(tmp_path)
    curate(raw_dir=r, out_dir=tmp_path/'out', benchmarks=(), progress=False)
    rj = read_table(tmp_path/'out'/'rejects.csv', 'rejects'); why = dict(zip(rj.path, rj.reason))
    for f, reason in [('mr/broken/truncated.nii.gz', 'NIfTI'), ('xray/broken/empty.png', 'cannot read image'), ('xray/broken/not_dicom.dcm', 'not a DICOM'),
                      ('mr/broken/all_nan.nii.gz', 'NaN'), ('mr/broken/constant.nii.gz', 'constant'), ('xray/broken/one_px_wide.png', 'aspect'),
                      ('xray/broken/mpeg2.dcm', 'MPEG2'), ('mr/broken/nan_spacing.nii.gz', 'invalid geometry'),
                      ('xray/broken/dangling.png', 'dangling symlink -> missing.png'), ('xray/broken/loop.png', 'symlink loop')]:
        assert reason in why.get(f, ''), (f, why.get(f))
    dl = _dl(tmp_path/'out')
    assert {'xray/broken/rgba.png', 'xray/broken/gray16.png', 'xray/broken/mono1.dcm', 'mr/broken/good.nii.gz',
            'mr/broken/flat_2d.nii.gz'} <= set(dl.src)
    from PIL import Image
    for p in dl.path: im = Image.open(tmp_path/'out'/p); assert im.size == (224, 224) and im.mode in ('L', 'RGB')
    # MONOCHROME1 is inverted: a dark-on-bright stored image is displayed bright-on-dark
    row = dl[dl.src == 'xray/broken/mono1.dcm'].iloc[0]
    assert row.modality == 'X-Ray'

def test_settings_cannot_be_mixed_in_one_folder(tmp_path):
    r = _raw(tmp_path)
    curate(raw_dir=r, out_dir=tmp_path/'out', benchmarks=(), progress=False)
    with pytest.raises(ValueError, match='options.slice_step'):
        curate(raw_dir=r, out_dir=tmp_path/'out', slice_step=2, benchmarks=(), progress=False)
    with pytest.raises(ValueError, match='views'):
        curate(raw_dir=r, out_dir=tmp_path/'o2', views='axial,oblique', progress=False)
    runs = (tmp_path/'out'/'curate_runs.jsonl').read_text().splitlines()
    assert [json.loads(run)['config']['slice_step'] for run in runs] == [1]  # the refused run is not recorded

SCRIPT = """
import sys
from biovfm.curate import curate
if __name__ == '__main__':
    raw_dir, out_dir, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    curate(raw_dir=raw_dir, out_dir=out_dir, workers=workers, chunk_jobs=1, benchmarks=(), progress=False)
"""

def test_killed_run_resumes_without_redoing_finished_chunks(tmp_path):
    r = _raw(tmp_path, n_vol=10)
    ref = tmp_path/'ref'; curate(raw_dir=r, out_dir=ref, chunk_jobs=1, benchmarks=(), progress=False)
    (tmp_path/'run.py').write_text(SCRIPT)
    out = tmp_path/'out'
    p = subprocess.Popen([sys.executable, str(tmp_path/'run.py'), str(r), str(out), '2'], start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 120 and len(list(out.glob('shards/*/*/.done'))) < 3: time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done = {d: d.stat().st_mtime_ns for d in out.glob('shards/*/*/.done')}
    assert 3 <= len(done) and not (out/'data_list.parquet').exists(), 'kill came too late to test resumption'
    subprocess.run([sys.executable, str(tmp_path/'run.py'), str(r), str(out), '1'], check=True)
    assert all(d.stat().st_mtime_ns == m for d, m in done.items()), 'a finished chunk was redone'
    pd.testing.assert_frame_equal(_dl(out), _dl(ref))
    pd.testing.assert_frame_equal(pd.read_csv(out/'rejects.csv'), pd.read_csv(ref/'rejects.csv'))

def test_plan_is_deterministic_and_balanced(tmp_path):
    r = _raw(tmp_path, n_vol=6)
    a = assign_chunks(plan_jobs(r), num_shards=3, chunk_jobs=2); b = assign_chunks(plan_jobs(r), num_shards=3, chunk_jobs=2)
    pd.testing.assert_frame_equal(a, b)
    assert a.groupby(['shard', 'chunk']).size().max() <= 2 and a['shard'].nunique() == 3

def _papermill_curate(tmp_path, **params):
    import papermill
    nbs = Path(__file__).resolve().parents[1]/'nbs'
    return papermill.execute_notebook(str(nbs/'01_curate.ipynb'), str(tmp_path/'01_curate.out.ipynb'), parameters=params,
                                      kernel_name='python3', cwd=str(nbs), progress_bar=False)

def test_notebook_run_on_a_users_folder_with_corrupt_files(tmp_path):
    "The lessons use the embedded example data; the run cell curates the given folder (all of it) and exits 0."
    raw = make_corrupt_inputs(tmp_path/'users_raw')
    _papermill_curate(tmp_path, raw_dir=str(raw), out_dir=str(tmp_path/'out'), workers=1)
    rejects = read_table(tmp_path/'out'/'rejects.csv', 'rejects')
    assert 'mr/broken/truncated.nii.gz' in set(rejects.path)
    assert set(_dl(tmp_path/'out').src) == {'mr/broken/good.nii.gz', 'mr/broken/flat_2d.nii.gz', 'xray/broken/rgba.png',
                                            'xray/broken/gray16.png', 'xray/broken/mono1.dcm'}

def test_notebook_rejects_an_unknown_parameter(tmp_path):
    import papermill
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown parameter\(s\) \['max_file'\]"):
        _papermill_curate(tmp_path, max_file=3, out_dir=str(tmp_path/'out'))


def test_dask_local_cluster_curates_what_the_process_pool_curates(tmp_path):
    "engine='dask' (a 2-process LocalCluster here; a scheduler address on a cluster) gives the same corpus."
    raw = tmp_path/'raw'
    for folder in ('xray/pydicom-data', 'mr/nipy', 'ultrasound/pydicom', 'mr_dicom_series'):
        shutil.copytree(repo_root()/'data'/'raw'/folder, raw/folder)
    kw = dict(benchmarks=(), progress=False, workers=2, chunk_jobs=1, slice_step=4, images_per_tar=0)
    local = curate(raw_dir=raw, out_dir=tmp_path/'local', **kw)
    dask = curate(raw_dir=raw, out_dir=tmp_path/'dask', engine='dask', **kw)
    assert dask['images'] == local['images'] > 0 and dask['inputs'] == local['inputs']
    pd.testing.assert_frame_equal(_dl(tmp_path/'dask')[['path', 'src', 'content_hash']],
                                  _dl(tmp_path/'local')[['path', 'src', 'content_hash']])
    with pytest.raises(ValueError, match=r"engine='spark': use one of \['dask', 'local'\]"):
        curate(raw_dir=raw, out_dir=tmp_path/'x', engine='spark', **kw)

def _pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()

def test_local_engine_works_in_this_process_and_its_pool():
    import math
    from biovfm.curate import get_engine
    with get_engine('local', workers=2) as engine:
        pids = list(engine.map(_pid_after, [0.5] * 8))
        pool = engine.pool
        assert sorted(engine.map(abs, [-2, -1])) == [1, 2]
        assert engine.pool is pool  # one pool for every map of a run
        with pytest.raises(ValueError, match='math domain error'):  # an error in either process reaches the caller
            list(engine.map(math.sqrt, [4.0, -1.0, 9.0, -1.0]))
    assert engine.pool is None
    assert len(pids) == 8 and os.getpid() in pids and len(set(pids)) == 2, pids
