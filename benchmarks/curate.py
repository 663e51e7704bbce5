"Curation throughput on 4 copies of the embedded raw folder (real files, 10 modalities): 1 vs 2 workers, pool vs Dask (benchmarks/curate.md)."
import os, shutil, statistics, tempfile, time
from pathlib import Path
import pandas as pd
from biovfm.core import data_dir, repo_root
from biovfm.curate import curate
from biovfm.readers import default_raw_dir

COPIES = 4  # enough work for the pool's start-up and the serial merge to be a small part
ORDER = (1, 2, 2, 1, 1, 2)  # three pairs, alternating which runs first: a machine that drifts in speed cancels out


def run(raw, workers, out, engine='local'):
    "(wall seconds, summary, summed seconds of the inputs' processing) of one fresh curation run."
    start = time.perf_counter()
    summary = curate(raw, out, workers=workers, chunk_jobs=1, slice_step=1, benchmarks=(), progress=False,
                     engine=engine)
    wall = time.perf_counter() - start
    busy = pd.read_csv(Path(out)/'inputs.csv').seconds.sum()
    return wall, summary, busy


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
        runs = [(workers, *run(raw, workers, Path(d)/f'run{k}')) for k, workers in enumerate(ORDER)]
        t_dask, _, _ = run(raw, 2, Path(d)/'dask', 'dask')
    summary = runs[0][2]
    n = summary['candidates']
    pairs = [(a, b) if a[0] == 1 else (b, a) for a, b in zip(runs[::2], runs[1::2])]
    ratios = [one[1]/two[1] for one, two in pairs]
    t1 = statistics.median(one[1] for one, _ in pairs)
    t2 = statistics.median(two[1] for _, two in pairs)
    busy1 = statistics.median(one[3] for one, _ in pairs)
    busy2 = statistics.median(two[3] for _, two in pairs)
    load = os.getloadavg()[0]
    lines = [f"## curate benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {len(files)} raw files ({COPIES} copies of the embedded ones), {n} candidate slices, {summary['images']} images written)",
             f"- 1 worker: {t1:.1f} s (median of {len(pairs)}), {n/t1:.0f} candidate slices/s ({summary['images']/t1:.0f} images/s)",
             f"- 2 workers: {t2:.1f} s (median of {len(pairs)}), {n/t2:.0f} candidate slices/s, {n/t2/2:.0f} per worker",
             f"- speed-up 1 -> 2 workers: {statistics.median(ratios):.2f}x, median of {len(pairs)} back-to-back pairs "
             f"({', '.join(f'{r:.2f}x' for r in ratios)}; wall time includes planning, starting the worker, the merge "
             "and the tar shards)",
             f"- summed processing seconds of the inputs: {busy1:.1f} s with 1 process, {busy2:.1f} s with 2 "
             f"({busy2/busy1 - 1:+.0%}: two processes sharing the machine)",
             f"- engine='dask' (a 2-process LocalCluster, started and stopped inside the timing): {t_dask:.1f} s, {t1/t_dask:.2f}x",
             f"- load average during the run: {load:.1f} on {os.cpu_count()} CPUs" + (" -- the machine was shared: the speed-up is not meaningful" if load > os.cpu_count() else ''), '']
    print('\n'.join(lines))
    md = repo_root()/'benchmarks'/'curate.md'
    md.write_text((md.read_text() if md.exists() else '# Curation throughput\n\n') + '\n'.join(lines) + '\n')
