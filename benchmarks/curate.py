"Curation throughput: candidate slices/s per worker and the speed-up from 1 to 2 workers (writes benchmarks/curate.md)."
import json, os, sys, tempfile, time
from pathlib import Path
from biovfm.core import data_dir, repo_root
from biovfm.curate import curate
from biovfm.readers import default_raw_dir

FILES = ['mr/niivue-demo-images/MR_Gd.nii.gz', 'mr/niivue-demo-images/chris_t1.nii.gz', 'ct/niivue-demo-images/CT_AVM.nii.gz',
         'mr/nilearn/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz', 'ct/niivue-demo-images/CT_pitch.nii.gz', 'mr/niivue-demo-images/register/T2w.nii.gz']

def run(raw, workers, d, engine='local'):
    t = time.perf_counter()
    s = curate(raw, Path(d)/f'{engine}{workers}', workers=workers, chunk_jobs=1, benchmarks=(), progress=False,
               engine=engine)
    return time.perf_counter() - t, s

if __name__ == '__main__':
    src = data_dir('raw') or default_raw_dir()
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d)/'raw'
        files = [f for f in FILES if (src/f).exists()] or [str(p.relative_to(src)) for p in sorted(src.rglob('*.nii*'))]
        for f in files: (raw/f).parent.mkdir(parents=True, exist_ok=True); (raw/f).symlink_to(src/f)
        (t1, s1), (t2, s2), (t3, s3) = run(raw, 1, d), run(raw, 2, d), run(raw, 2, d, 'dask')
    n = s1['candidates']; load = os.getloadavg()[0]
    lines = [f"## curate benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {len(files)} real volumes, {n} candidate slices, {s1['images']} images written)",
             f"- 1 worker: {t1:.1f} s, {n/t1:.0f} candidate slices/s ({s1['images']/t1:.0f} images/s)",
             f"- 2 workers: {t2:.1f} s, {n/t2:.0f} candidate slices/s, {n/t2/2:.0f} per worker",
             f"- speed-up 1 -> 2 workers: {t1/t2:.2f}x (wall time includes planning, spawning workers and the merge)",
             f"- engine='dask' (a 2-process LocalCluster, started and stopped inside the timing): {t3:.1f} s, {t1/t3:.2f}x",
             f"- load average during the run: {load:.1f} on {os.cpu_count()} CPUs" + (" -- the machine was shared: the speed-up is not meaningful" if load > os.cpu_count() else ''), '']
    print('\n'.join(lines))
    md = repo_root()/'benchmarks'/'curate.md'
    md.write_text((md.read_text() if md.exists() else '# Curation throughput\n\n') + '\n'.join(lines) + '\n')
