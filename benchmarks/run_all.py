"""Run every stage benchmark (benchmarks/<stage>.py) and collect the ratios they write
(benchmarks/<stage>.md) into benchmarks/README.md, with the machine they were measured on.

    python benchmarks/run_all.py            # run all, then collect
    python benchmarks/run_all.py --collect  # only rebuild README.md from the stage .md files
"""
import os, platform, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent

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
             f"(regenerate: `make bench`).\n\nMachine of the last full run: {machine()}.\n"]
    for md in sorted(HERE.glob('*.md')):
        if md.name != 'README.md': parts.append(md.read_text().strip() + '\n')
    out = HERE/'README.md'
    out.write_text('\n'.join(parts))
    return out

if __name__ == '__main__':
    if '--collect' not in sys.argv:
        for script in sorted(HERE.glob('*.py')):
            if script.name == Path(__file__).name: continue
            t = time.time(); print(f"== {script.name}", flush=True)
            rc = subprocess.run([sys.executable, str(script)]).returncode
            print(f"== {script.name}: exit {rc} in {time.time()-t:.0f} s", flush=True)
            if rc: sys.exit(rc)
    print(collect())
