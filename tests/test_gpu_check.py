"`make gpu-check`'s script runs the same code on a CPU (the GPU server runs it with --device cuda)."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_gpu_check_script_on_cpu():
    cmd = [sys.executable, str(ROOT/'benchmarks'/'gpu_check.py'), '--device', 'cpu', '--archs', 'vit_tiny',
           '--img_size', '64', '--steps', '3', '--batch_scale', '0.125']
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    lines = [l for l in out.stdout.splitlines() if l.startswith(('PASS', 'FAIL'))]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len(lines) == 4 and all(l.startswith('PASS') for l in lines), lines
    assert 'images_per_s_per_gpu' in out.stdout and '4 PASS, 0 FAIL' in out.stdout
