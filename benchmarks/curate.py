"""Curation throughput on copies of the embedded raw folder (real files, 10 modalities), against its peer: a plain
single-process loop over the same readers and the same per-image work (`process_job` on every planned job: read,
window, slice, letterbox, hash, write PNG) without the engine's chunks, pool, merge (deduplication, leakage audit)
and tar shards. The plain loop, curation with 1 worker and with 2 run interleaved (the order rotated every round);
the ratios are medians of the per-round ratios. Then engine='dask' once.

    python benchmarks/curate.py [--copies 4] [--rounds 3] [--no-dask] [--smoke]

Appends its section to benchmarks/curate.md (--smoke: 1 copy, 1 round, no Dask, prints only).
"""
import argparse, os, shutil, statistics, tempfile, time
from pathlib import Path
from biovfm.core import data_dir, repo_root
from biovfm.curate import Options, curate, plan_jobs, process_job
from biovfm.readers import default_raw_dir


def run(raw, workers, out, engine='local', slice_step=1, max_files=None):
    "(wall seconds, summary) of one fresh curation run."
    start = time.perf_counter()
    summary = curate(raw_dir=raw, out_dir=out, workers=workers, chunk_jobs=1, slice_step=slice_step,
                     max_files=max_files, benchmarks=(), progress=False, engine=engine)
    return time.perf_counter() - start, summary


def plain_loop(raw, out, slice_step=1, max_files=None):
    "(wall seconds, images written) of the peer: plan the jobs, then `process_job` on each, one after another."
    start = time.perf_counter()
    options = Options(slice_step=slice_step)
    written = 0
    for i, job in enumerate(plan_jobs(raw, max_files=max_files).to_dict('records')):
        rows, _, _ = process_job(raw, job, out, f'job{i:05d}', options)
        written += len(rows)
    return time.perf_counter() - start, dict(images=written)


def copy_raw(src: Path, raw: Path, copies: int) -> list:
    "<modality>/<source>-<copy>/...: a raw folder `copies` times the embedded one; its files."
    for copy in range(copies):
        for path in sorted(p for p in src.rglob('*') if p.is_file() and p.name != 'MANIFEST.tsv'):
            modality, source, *rest = path.relative_to(src).parts
            dest = raw.joinpath(modality, f'{source}-{copy}', *rest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)  # copies: links out of the raw folder are not followed
    return [p for p in raw.rglob('*') if p.is_file()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--copies', type=int, default=4, help="copies of the embedded raw folder (enough work for the "
                    "pool's start-up and the serial merge to be a small part)")
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--slice-step', type=int, default=1, help='every k-th slice of a volume')
    ap.add_argument('--max-files', type=int, default=None, help='a subset of the raw files, spread over modalities')
    ap.add_argument('--no-dask', action='store_true')
    ap.add_argument('--smoke', action='store_true', help='1 copy, 8 files, every 8th slice, 1 round, no Dask; prints only')
    ap.add_argument('--md', default=str(repo_root()/'benchmarks'/'curate.md'))
    a = ap.parse_args(argv)
    if a.smoke:
        a.copies, a.max_files, a.slice_step, a.rounds, a.no_dask, a.md = 1, 8, 8, 1, True, None
    src = data_dir('raw') or default_raw_dir()
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        raw = Path(d)/'raw'
        files = copy_raw(src, raw, a.copies)
        size = dict(slice_step=a.slice_step, max_files=a.max_files)
        variants = dict(plain=lambda out: plain_loop(raw, out, **size), one=lambda out: run(raw, 1, out, **size),
                        two=lambda out: run(raw, 2, out, **size))
        names, times, summaries = list(variants), {name: [] for name in variants}, {}
        for r in range(a.rounds):
            for name in names[r % 3:] + names[:r % 3]:
                seconds, summaries[name] = variants[name](Path(d)/f'{name}{r}')
                times[name].append(seconds)
        t_dask = None if a.no_dask else run(raw, 2, Path(d)/'dask', 'dask', **size)[0]
    summary, plain_images = summaries['one'], summaries['plain']['images']
    ratio = lambda x, y: statistics.median(p/q for p, q in zip(times[x], times[y]))
    t_plain, t1, t2 = (statistics.median(times[k]) for k in ('plain', 'one', 'two'))
    n = summary['candidates']
    load = max(load_start, os.getloadavg()[0])
    lines = [f"## curate benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, {len(files)} raw files "
             f"({a.copies} copies of the embedded ones), {n} candidate slices, {summary['images']} images written)",
             f"`python benchmarks/curate.py --copies {a.copies} --rounds {a.rounds} --slice-step {a.slice_step}"
             f"{f' --max-files {a.max_files}' if a.max_files else ''}{' --no-dask' if a.no_dask else ''}`; "
             f"medians of {a.rounds} interleaved rounds",
             f"- **curate 1 worker / plain loop: {ratio('one', 'plain'):.2f}** ({t1:.1f} s vs {t_plain:.1f} s; the "
             f"plain loop writes {plain_images} images, before deduplication; above 1: what planning, chunk "
             "bookkeeping, the merge (deduplication, leakage audit) and tar shards cost on one process)",
             f"- **curate 2 workers / plain loop: {ratio('two', 'plain'):.2f}** ({t2:.1f} s, "
             f"{n/t2:.0f} candidate slices/s)",
             f"- speed-up 1 -> 2 workers: {ratio('one', 'two'):.2f}x (wall time includes planning, starting the "
             "worker, the merge and the tar shards)"]
    if t_dask is not None:
        lines.append(f"- engine='dask' (a 2-process LocalCluster, started and stopped inside the timing): "
                     f"{t_dask:.1f} s, {t1/t_dask:.2f}x of 1 worker")
    lines += [f"- load average during the run: up to {load:.1f} on {os.cpu_count()} CPUs"
              + (" -- a loaded machine: seconds are inflated, the interleaved ratios stay comparable"
                 if load > 1.5 else ''), '']
    print('\n'.join(lines))
    if a.md is not None:
        md = Path(a.md)
        md.write_text((md.read_text() if md.exists() else '# Curation throughput\n\n') + '\n' + '\n'.join(lines))


if __name__ == '__main__':  # curation spawns worker processes, which import this file
    main()
