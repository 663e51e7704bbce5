"""Run every stage benchmark (benchmarks/<stage>.py) and collect the ratios they write
(benchmarks/<stage>.md) into benchmarks/README.md, with the machine they were measured on.

    python benchmarks/run_all.py                   # run all at full sizes, then collect (`make bench`)
    python benchmarks/run_all.py --only pretrain   # run some, then collect
    python benchmarks/run_all.py --smoke           # every script at tiny sizes; writes nothing
    python benchmarks/run_all.py --collect         # only rebuild README.md from the stage .md files
"""
import os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# each stage's script and the arguments of its full run (probe: its ratios; its equivalence and switch studies
# take hours and are run by hand)
STAGES = dict(curate=[], pretrain=[], monitor=[], probe=['--sections', 'timing,bootstrap'], scale=[], shards=[])
# the other scripts here, and why `make bench` does not run them
NOT_STAGES = dict(run_all='this file', peers="a module: lightly's DINOv2 / MAE steps (pretrain.py, learn_peer.py)",
                  gpu_check="`make gpu-check`'s, on the GPU server",
                  learn_peer="after `make learn`: the learning profile against lightly's recipes at the same budget")

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    import torch
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    mem = os.sysconf('SC_PAGE_SIZE')*os.sysconf('SC_PHYS_PAGES')/2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, {gpu}; torch {torch.__version__}, Python {platform.python_version()}"

def collect() -> Path:
    parts = [f"# Benchmarks\n\nRatios measured by each stage's benchmark in one run "
             f"(regenerate: `make bench`; each section gives its own date, command and how busy the machine was: on a shared machine "
             f"compare the ratios, measured interleaved, not the seconds).\n\nMachine this file was collected on: {machine()}.\n"]
    for stage in STAGES:
        if (HERE/f'{stage}.md').exists(): parts.append((HERE/f'{stage}.md').read_text().strip() + '\n')
    out = HERE/'README.md'
    out.write_text('\n'.join(parts))
    return out

def run(stages: list, smoke: bool = False) -> int:
    "Run the stages' scripts one after another (full sizes, or --smoke); the first non-zero exit status, else 0."
    for stage in stages:
        args = ['--smoke'] if smoke else STAGES[stage]
        t = time.time(); print(f"== {stage}.py {' '.join(args)}", flush=True)
        rc = subprocess.run([sys.executable, str(HERE/f'{stage}.py'), *args], cwd=HERE.parent).returncode
        print(f"== {stage}.py: exit {rc} in {time.time()-t:.0f} s", flush=True)
        if rc: return rc
    return 0

if __name__ == '__main__':
    only = sys.argv[sys.argv.index('--only') + 1].split(',') if '--only' in sys.argv else list(STAGES)
    unknown = set(only) - set(STAGES)
    if unknown: sys.exit(f"--only: unknown stage(s) {sorted(unknown)}; choose from {', '.join(STAGES)}")
    if '--collect' not in sys.argv:
        rc = run(only, smoke='--smoke' in sys.argv)
        if rc or '--smoke' in sys.argv: sys.exit(rc)
    print(collect())
