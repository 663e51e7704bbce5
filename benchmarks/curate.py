"Curation throughput on 4 copies of the embedded raw folder (real files, 10 modalities): 1 vs 2 workers, pool vs Dask (benchmarks/curate.md)."
import json, os, shutil, sys, tempfile, time
from pathlib import Path
from biovfm.core import data_dir, repo_root
from biovfm.curate import curate
from biovfm.readers import default_raw_dir

COPIES = 4  # enough work for the pool's start-up and the serial merge to be a small part


def run(raw, workers, d, engine='local'):
    t = time.perf_counter()
    s = curate(raw, Path(d)/f'{engine}{workers}', workers=workers, chunk_jobs=1, slice_step=1, benchmarks=(),
               progress=False, engine=engine)
    return time.perf_counter() - t, s

if __name__ == '__main__':
    src = data_dir('raw') or default_raw_dir()
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d)/'raw'
        for copy in range(COPIES):  # <modality>/<source>-<copy>/...: a corpus COPIES times the embedded one
            for path in sorted(p for p in src.rglob('*') if p.is_file() and p.name != 'MANIFEST.tsv'):
                modality, source, *rest = path.relative_to(src).parts
                dest = raw.joinpath(modality, f'{source}-{copy}', *rest)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dest)  # copies: links out of the raw folder are not followed
        files = [p for p in raw.rglob('*') if p.is_file()]
        (t1, s1), (t2, s2), (t3, s3) = run(raw, 1, d), run(raw, 2, d), run(raw, 2, d, 'dask')
    n = s1['candidates']; load = os.getloadavg()[0]
    lines = [f"## curate benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {len(files)} raw files ({COPIES} copies of the embedded ones), {n} candidate slices, {s1['images']} images written)",
             f"- 1 worker: {t1:.1f} s, {n/t1:.0f} candidate slices/s ({s1['images']/t1:.0f} images/s)",
             f"- 2 workers: {t2:.1f} s, {n/t2:.0f} candidate slices/s, {n/t2/2:.0f} per worker",
             f"- speed-up 1 -> 2 workers: {t1/t2:.2f}x (wall time includes planning, spawning workers and the merge)",
             f"- engine='dask' (a 2-process LocalCluster, started and stopped inside the timing): {t3:.1f} s, {t1/t3:.2f}x",
             f"- load average during the run: {load:.1f} on {os.cpu_count()} CPUs" + (" -- the machine was shared: the speed-up is not meaningful" if load > os.cpu_count() else ''), '']
    print('\n'.join(lines))
    md = repo_root()/'benchmarks'/'curate.md'
    md.write_text((md.read_text() if md.exists() else '# Curation throughput\n\n') + '\n'.join(lines) + '\n')
