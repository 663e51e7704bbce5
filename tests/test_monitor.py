"Online evaluation in pretraining: exact resume of its rows, a collapsed teacher flagged, SIGTERM checkpoints and resumes exactly."
import os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import torch

from biovfm.data import example_data_list
from biovfm import pretrain as P
from biovfm.monitor import EVAL_FILE, learning_summary, collapse_flags

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(method='dinov2', arch='vit_tiny_patch16', img_size=32, patch_size=8, batch_size=4, n_prototypes=64,
            head_hidden=64, head_bottleneck=32, n_local=2, local_size=16, seed=3)
EVAL = dict(eval_every=2, eval_benchmarks='breastmnist', eval_n=100)


@pytest.fixture(scope='module')
def data_list(tmp_path_factory):
    return str(example_data_list(tmp_path_factory.mktemp('dl'), n=24, size=32))


def _eval_rows(run_dir):
    rows = pd.read_csv(Path(run_dir) / EVAL_FILE)
    return rows[rows.metric != 'eval_s'].reset_index(drop=True)   # the evaluation's own time varies


def test_online_eval_rows_resume_exactly(data_list, tmp_path):
    kw = dict(TINY, max_steps=6, save_every=100, data_list=data_list, **EVAL)
    P.train(P.make_config(**kw, out_dir=str(tmp_path / 'a')), progress=False)
    P.train(P.make_config(**kw, out_dir=str(tmp_path / 'b')), progress=False, stop_after=2)   # stops before evaluating step 2
    assert _eval_rows(tmp_path / 'b').step.unique().tolist() == [0]
    P.train(P.make_config(**kw, out_dir=str(tmp_path / 'b')), progress=False)
    a, b = _eval_rows(tmp_path / 'a'), _eval_rows(tmp_path / 'b')
    assert a.step.unique().tolist() == [0, 2, 4, 6]                  # step 0 (random init), every 2 steps, the last
    assert set(a.metric) >= {'knn_auc', 'knn_acc', 'linear_auc', 'teacher_entropy_ratio', 'batch_entropy_ratio', 'emb_std'}
    assert 'test' not in ' '.join(a.benchmark)                          # validation split only
    pd.testing.assert_frame_equal(a, b, rtol=1e-5, atol=1e-6)
    log_a, log_b = (pd.read_csv(tmp_path / d / 'log.csv') for d in 'ab')
    assert log_a.knn_auc.notna().tolist() == [True, False, True, False, True, False]   # next to the loss, at the evaluated steps
    pd.testing.assert_series_equal(log_a.knn_auc, log_b.knn_auc, rtol=1e-5, atol=1e-6)
    summary = learning_summary(tmp_path / 'a')
    assert (summary['first_step'], summary['last_step']) == (0, 6) and 0 <= summary['knn_auc_end'] <= 1


def test_eval_every_zero_turns_it_off(data_list, tmp_path):
    P.train(P.make_config(**TINY, max_steps=2, data_list=data_list, eval_every=0, out_dir=str(tmp_path)), progress=False)
    assert not (tmp_path / EVAL_FILE).exists() and 'knn_auc' not in pd.read_csv(tmp_path / 'log.csv')


def test_a_constant_teacher_is_flagged_as_collapsed(data_list, tmp_path, monkeypatch):
    "A teacher whose head gives every image the same output (here: zero logits) is a uniform collapse: warned and stored."
    from biovfm import dinov2

    original = dinov2.DINOv2Student.teacher_forward

    def constant_teacher(self, *args, **kw):
        out = original(self, *args, **kw)
        return {k: torch.zeros_like(v) if k.endswith('logits') or k in ('dino', 'ibot') else v for k, v in out.items()}

    monkeypatch.setattr(dinov2.DINOv2Student, 'teacher_forward', constant_teacher)
    kw = dict(TINY, max_steps=4, data_list=data_list, **EVAL, out_dir=str(tmp_path))
    with pytest.warns(UserWarning, match="collapse signal 'uniform'"):
        P.train(P.make_config(**kw), progress=False)
    assert learning_summary(tmp_path)['collapse'].split(',')[0] == 'uniform'
    assert collapse_flags(pd.read_csv(tmp_path / 'log.csv'), 64) == ['uniform']


def _signal_when_logging(cmd, log_csv, sig, env):
    "Start `cmd`, send `sig` as soon as log.csv appears (step 50 is flushed), wait; (exit status, output)."
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.time()
    while not log_csv.exists() and proc.poll() is None and time.time() - started < 600:
        time.sleep(0.02)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def _same_losses(ref_dir, run_dir, steps):
    ref, resumed = pd.read_csv(ref_dir / 'log.csv'), pd.read_csv(run_dir / 'log.csv')
    assert resumed.step.tolist() == list(range(steps))
    for column in ('loss', 'dino_loss', 'ibot_loss', 'koleo_loss'):
        pd.testing.assert_series_equal(ref[column], resumed[column], rtol=1e-5, atol=1e-6)


PREEMPT = dict(TINY, max_steps=80, save_every=1000, eval_every=0)   # log.csv appears at step 50: the signal lands mid-run
ENV = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))


@pytest.fixture(scope='module')
def preempt_ref(data_list, tmp_path_factory):
    out = tmp_path_factory.mktemp('preempt_ref')
    cfg = P.make_config(**PREEMPT, data_list=data_list, out_dir=str(out))
    done = subprocess.run([sys.executable, '-m', 'biovfm.pretrain', *P.cli_args(cfg), '--no_progress'], cwd=ROOT, env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoints_then_resumes_exactly(data_list, preempt_ref, tmp_path, sig):
    "Slurm's preemption signal mid-run: the step finishes, a checkpoint is written, exit PREEMPTED_EXIT; the rerun is exact."
    cfg = P.make_config(**PREEMPT, data_list=data_list, out_dir=str(tmp_path / 'run'))
    cmd = [sys.executable, '-m', 'biovfm.pretrain', *P.cli_args(cfg), '--no_progress']
    status, out = _signal_when_logging(cmd, tmp_path / 'run' / 'log.csv', sig, ENV)
    assert status == P.PREEMPTED_EXIT, out[-3000:]
    stopped_at = P.load_checkpoint(tmp_path / 'run' / P.CKPT)['step']
    assert 50 <= stopped_at < 80 and f'checkpoint at step {stopped_at}' in out
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_losses(preempt_ref, tmp_path / 'run', 80)


def test_sigterm_under_torchrun_stops_every_rank_at_one_step(data_list, tmp_path):
    "torchrun passes SIGTERM to its workers: both ranks stop at the same step, one checkpoint; the rerun is exact."
    kw = dict(PREEMPT, data_list=data_list, nproc=2, strategy='ddp')

    def torchrun(out):
        cfg = P.make_config(**kw, out_dir=str(out))
        return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', '-m', 'biovfm.pretrain',
                *P.cli_args(cfg), '--no_progress']
    done = subprocess.run(torchrun(tmp_path / 'ref'), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    status, out = _signal_when_logging(torchrun(tmp_path / 'run'), tmp_path / 'run' / 'log.csv', signal.SIGTERM, ENV)
    assert status != 0, out[-3000:]                  # the agent reports its workers' PREEMPTED_EXIT as a failure
    stopped_at = P.load_checkpoint(tmp_path / 'run' / P.CKPT)['step']
    assert 50 <= stopped_at < 80, out[-3000:]
    done = subprocess.run(torchrun(tmp_path / 'run'), cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    _same_losses(tmp_path / 'ref', tmp_path / 'run', 80)


def test_max_minutes_checkpoints_and_stops_cleanly(data_list, tmp_path):
    cfg = P.make_config(**TINY, max_steps=50, save_every=1000, data_list=data_list, eval_every=0, max_minutes=1e-9,
                        out_dir=str(tmp_path))
    P.train(cfg, progress=False)                       # returns: a time budget is not an error
    assert P.load_checkpoint(tmp_path / P.CKPT)['step'] == 1


def test_learn_peer_benchmark_smoke(tmp_path):
    "benchmarks/learn_peer.py (ours vs lightly's example recipes at the same budget) runs end to end at tiny sizes."
    done = subprocess.run([sys.executable, 'benchmarks/learn_peer.py', '--smoke', '--out', str(tmp_path)], cwd=ROOT,
                          env=dict(os.environ, HF_HUB_OFFLINE='1'), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'dinov2_vit_tiny' in done.stdout and 'mae_vit_tiny' in done.stdout and 'delta' in done.stdout
