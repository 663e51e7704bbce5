"""Scale benchmark: near duplicates among millions of hashes, a 21.47M-row data list (writes scale.md).

1. `near_duplicates` (max_dist 4) on 0.5M, 1M and 2M random 64-bit hashes with 1000 planted pairs (copies with
   0-4 random bits flipped): wall time, peak memory, recall of the planted pairs, and the cost projected to
   21.47M hashes from the work counted (probes grow as n, candidates as n², each at its measured unit cost) and
   from the wall times (`project_cost`); curation's `near_pairs` (which calls it) on 200k hashes beside it;
2. a synthetic 21.47M-row data list (SCHEMAS['data_list'], 10 modalities, 60 sources) written once to a
   temporary parquet, then `read_data_list` + `random_subset(0.2M, keep='modality')`: wall time and peak memory,
   with all columns and with only the two the subset needs.

Each measurement runs in a fresh child process and reports that process's own peak resident memory, Python and
the imported libraries included (their baseline is given too: numpy, pandas, pyarrow; not torch). The peak
is VmHWM from /proc/self/status: on Linux a child's ru_maxrss starts at its parent's resident size at the fork.

Usage: python benchmarks/scale.py [--sizes 500000,1000000,2000000] [--rows 21470000] [--subset 200000] [--full] [--smoke]
       --full also runs the near-duplicate search at 21.47M hashes (minutes), to check the projection.
"""
import argparse, json, os, resource, subprocess, sys, tempfile, time
from pathlib import Path

FULL = 21_470_000   # images in BioVFM-21M

def peak_mb() -> float:
    "This process's peak resident memory in MiB (VmHWM; else ru_maxrss, which includes the parent's at the fork)."
    try:
        for line in open('/proc/self/status'):
            if line.startswith('VmHWM:'): return int(line.split()[1]) / 1024
    except OSError: pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux

def child_near(n:int, n_pairs:int, seed:int) -> dict:
    import numpy as np
    from biovfm.scale import near_duplicates, planted_hashes, search_plan
    hashes, planted = planted_hashes(n, n_pairs, 4, seed)
    baseline = peak_mb()
    work = {}
    t = time.perf_counter()
    found = near_duplicates(hashes, 4, stats=work)
    seconds = time.perf_counter() - t
    found_set = set(map(tuple, found.tolist()))
    recalled = sum(tuple(p) in found_set for p in planted.tolist())
    return dict(n=n, seconds=seconds, peak_mb=peak_mb(), baseline_mb=baseline, pairs=len(found),
                recalled=recalled, planted=len(planted), plan=search_plan(n, n, 4), probes=work['probes'],
                candidates=work['candidates'], verify_seconds=work['verify_seconds'])

def child_near_pairs(n:int, seed:int) -> dict:
    import numpy as np
    from biovfm.dedup import near_pairs
    from biovfm.scale import near_duplicates, planted_hashes
    hashes, planted = planted_hashes(n, 1000, 4, seed)
    t = time.perf_counter(); old = near_pairs(hashes, threshold=4); old_s = time.perf_counter() - t
    t = time.perf_counter(); new = near_duplicates(hashes, 4); new_s = time.perf_counter() - t
    same = bool(np.array_equal(old[['i', 'j']].to_numpy(), new))
    return dict(n=n, near_pairs_s=old_s, near_duplicates_s=new_s, same=same)

def child_list(path:str, n_subset:int, columns:str) -> dict:
    from biovfm.scale import read_data_list, random_subset
    baseline = peak_mb()
    t = time.perf_counter()
    dl = read_data_list(path, None if columns == 'all' else columns.split(','))
    read_s = time.perf_counter() - t
    read_peak = peak_mb()
    bytes_per_row = dl.memory_usage(deep=True).sum() / len(dl)
    t = time.perf_counter()
    sub = random_subset(dl, n_subset, seed=0, keep='modality')
    subset_s = time.perf_counter() - t
    return dict(columns=columns, rows=len(dl), read_s=read_s, subset_s=subset_s, peak_mb=peak_mb(),
                read_peak_mb=read_peak, baseline_mb=baseline, bytes_per_row=bytes_per_row, subset_rows=len(sub),
                modalities_kept=int(sub.modality.nunique()), modalities=int(dl.modality.nunique()))

def run_child(*args) -> dict:
    "Run this script as a child measuring one thing; its last output line is the JSON result."
    out = subprocess.run([sys.executable, __file__, '--child', *map(str, args)], capture_output=True, text=True)
    if out.returncode: sys.exit(f"child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--sizes', default='500000,1000000,2000000')
    ap.add_argument('--pairs', type=int, default=1000)
    ap.add_argument('--rows', type=int, default=FULL)
    ap.add_argument('--subset', type=int, default=200_000)
    ap.add_argument('--full', action='store_true', help='also search 21.47M hashes')
    ap.add_argument('--near-pairs-n', type=int, default=200_000, help="hashes of curation's `near_pairs` comparison")
    ap.add_argument('--md', default=str(Path(__file__).with_suffix('.md')))
    ap.add_argument('--smoke', action='store_true', help='tiny sizes (up to 80k hashes, 200k rows); prints only')
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.pairs, args.rows, args.subset, args.near_pairs_n = '20000,40000,80000', 50, 200_000, 2_000, 20_000
        args.full, args.md = False, ''
    from biovfm.scale import project_cost, search_plan, write_synthetic_data_list
    import numpy as np
    load_start = os.getloadavg()[0]
    lines = []
    def say(s=''): print(s, flush=True); lines.append(s)

    say(f"## scale benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average {load_start:.1f} at the start)")
    say()
    say(f"### Near duplicates: `near_duplicates(hashes, max_dist=4)`, {args.pairs} planted pairs "
        f"(0-4 bits flipped)")
    say()
    say('| hashes | plan | seconds (verifying candidates) | peak MB (baseline) | probes | candidates | pairs found | '
        'planted pairs found |')
    say('|---|---|---|---|---|---|---|---|')
    sizes = [int(s) for s in args.sizes.split(',')] + ([FULL] if args.full else [])
    results = []
    for n in sizes:
        r = run_child('near', n, args.pairs, 0)
        results.append(r)
        say(f"| {n:,} | {r['plan'][0]} blocks, radius {r['plan'][1]} | {r['seconds']:.1f} ({r['verify_seconds']:.1f}) | "
            f"{r['peak_mb']:.0f} ({r['baseline_mb']:.0f}) | {r['probes'] / 1e6:,.0f}M | {r['candidates'] / 1e6:,.0f}M | "
            f"{r['pairs']:,} | {r['recalled']}/{r['planted']} |")
    say()
    say("Peak MB: the process's peak resident memory; baseline: before the search, i.e. the interpreter with numpy, "
        "pandas and pyarrow that `biovfm.scale` imports (not torch), plus the hashes.")
    measured = [r for r in results if r['n'] != FULL]
    ns = [r['n'] for r in measured]
    cost = project_cost(ns, [r['seconds'] for r in measured], FULL)
    slope, intercept = np.polyfit(ns, [r['peak_mb'] for r in measured], 1)
    per_probe = sum(r['seconds'] - r['verify_seconds'] for r in measured) / sum(r['probes'] for r in measured)
    per_candidate = sum(r['verify_seconds'] for r in measured) / sum(r['candidates'] for r in measured)
    largest = measured[-1]
    growth = FULL / largest['n']
    probes, candidates = largest['probes'] * growth, largest['candidates'] * growth**2
    projected = per_probe * probes + per_candidate * candidates
    if tuple(largest['plan']) != tuple(search_plan(FULL, FULL, 4)):
        say(f"- (the plan at {FULL:,} differs from the one measured: the projection below is only indicative)")
    say()
    say(f"- projected to {FULL:,} hashes from the work: **{projected:.0f} s** = {probes / 1e9:.2f}G probes "
        f"(x{growth:.1f}) at {per_probe * 1e9:.0f} ns + {candidates / 1e9:.2f}G candidates (x{growth**2:.0f}) at "
        f"{per_candidate * 1e9:.0f} ns, unit costs measured over {ns[0]:,}-{ns[-1]:,}")
    say(f"- from the wall times alone (`project_cost`): {cost['linear_quadratic']:.0f} s from a·n + b·n² "
        f"(b = {cost['b']:.1e} s: the n² term is barely visible up to {ns[-1]:,}), {cost['power_law']:.0f} s from "
        f"the power law n^{cost['exponent']:.2f}; peak memory about {intercept + slope * FULL:,.0f} MB (linear fit)")
    if args.full:
        r = results[-1]
        say(f"- measured at {FULL:,} (`--full`): {r['seconds']:.0f} s ({r['candidates'] / 1e9:.2f}G candidates, "
            f"{r['verify_seconds']:.0f} s verifying them), {r['peak_mb']:.0f} MB, {r['recalled']}/{r['planted']} "
            f"planted pairs")
    big = next((r for r in results if r['n'] == 2_000_000), None)
    if big:
        ok = big['seconds'] < 120 and big['peak_mb'] < 4096 and big['recalled'] == big['planted']
        say(f"- target at 2M (every planted pair, < 120 s, < 4 GB): **{'met' if ok else 'NOT met'}**")
    old = run_child('near_pairs', args.near_pairs_n, 0)
    say(f"- curation's `near_pairs` (its pairs table around `near_duplicates`; until 2026-12-01 five exact pHash bands "
        f"joined with pandas, 6.4 s here) on {old['n']:,} hashes: {old['near_pairs_s']:.2f} s against "
        f"{old['near_duplicates_s']:.2f} s, {'the same pairs' if old['same'] else 'DIFFERENT pairs'}")
    say()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)/'data_list.parquet'
        t = time.perf_counter()
        write_synthetic_data_list(path, args.rows, seed=0)
        written_s = time.perf_counter() - t
        say(f"### Data list: {args.rows:,} synthetic rows, `read_data_list` + "
            f"`random_subset({args.subset:,}, keep='modality')`")
        say()
        say(f"Written once in {written_s:.0f} s ({path.stat().st_size / 2**20:,.0f} MiB parquet, "
            f"not part of the measurements).")
        say()
        say('| columns read | read s | subset s | total s | peak MB (after read; baseline) | bytes a row | '
            'modalities kept |')
        say('|---|---|---|---|---|---|---|')
        rows = []
        for columns in ('all', 'path,modality'):
            r = run_child('list', path, args.subset, columns)
            rows.append(r)
            say(f"| {columns} | {r['read_s']:.1f} | {r['subset_s']:.1f} | {r['read_s'] + r['subset_s']:.1f} | "
                f"{r['peak_mb']:.0f} ({r['read_peak_mb']:.0f}; {r['baseline_mb']:.0f}) | {r['bytes_per_row']:.0f} | "
                f"{r['modalities_kept']}/{r['modalities']} |")
    full = rows[0]
    seconds = full['read_s'] + full['subset_s']
    ok = seconds < 30 and full['peak_mb'] < 4096 and full['modalities_kept'] == full['modalities']
    say()
    say(f"- target at {args.rows:,} rows, all columns (< 30 s, < 4 GB, every modality kept): "
        f"**{'met' if ok else 'NOT met'}**")
    load_end = os.getloadavg()[0]
    shared = max(load_start, load_end) > os.cpu_count()
    note = " -- the machine was shared: times are inflated by other work" if shared else ''
    say(f"- load average {load_start:.1f} at the start, {load_end:.1f} at the end, on {os.cpu_count()} CPUs{note}")
    say()
    if not args.md:
        return
    md = Path(args.md)
    header = '# Scale: near duplicates and data lists at 21M images\n\n'
    md.write_text((md.read_text() if md.exists() else header) + '\n'.join(lines) + '\n')

if __name__ == '__main__':
    if len(sys.argv) > 2 and sys.argv[1] == '--child':
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == 'near': result = child_near(int(rest[0]), int(rest[1]), int(rest[2]))
        elif kind == 'near_pairs': result = child_near_pairs(int(rest[0]), int(rest[1]))
        else: result = child_list(rest[0], int(rest[1]), rest[2])
        print(json.dumps(result))
    else:
        main()
