"""The installed console scripts, run as a user runs them: exit status 0 on success, a non-zero status and one
line `<prog>: error: <message>` on stderr for a user error (2 for a usage error), the traceback only on request."""
import os, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
RANDOM_VIT = 'random:vit_tiny_patch16_224:patch_size=8'
TINY_PRETRAIN = ['--method', 'mae', '--img_size', '32', '--patch_size', '8', '--batch_size', '4', '--max_steps', '1',
                 '--save_every', '1', '--no_progress']


def shell(*argv, debug=False, timeout=300):
    "Run a console script (`biovfm ...` from .venv/bin, or `-m module ...` with this Python); the completed process."
    command = [sys.executable, *argv] if argv[0] == '-m' else [str(BIN / argv[0]), *argv[1:]]
    env = {k: v for k, v in os.environ.items() if k != 'BIOVFM_DEBUG'} | {'HF_HUB_OFFLINE': '1', 'MPLBACKEND': 'Agg'}
    if debug:
        env['BIOVFM_DEBUG'] = '1'
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def assert_user_error(done, prog, status, *words):
    "Refused with `status` and one line `prog: error: ...` naming `words`, no traceback."
    assert done.returncode == status, (done.returncode, done.stderr)
    assert 'Traceback' not in done.stderr, done.stderr
    error_lines = [line for line in done.stderr.splitlines() if ': error: ' in line]
    assert len(error_lines) == 1 and error_lines[0].startswith(f'{prog}: error: '), done.stderr
    for word in words:
        assert word in error_lines[0], (word, error_lines[0])


@pytest.fixture(scope='module')
def data_list(tmp_path_factory):
    from biovfm.data import example_data_list
    return str(example_data_list(tmp_path_factory.mktemp('dl'), n=8, size=32))


def test_curate_success_and_a_missing_raw_folder(tmp_path):
    from biovfm.testing import make_corrupt_inputs
    raw = make_corrupt_inputs(tmp_path / 'raw')
    done = shell('biovfm', 'curate', '--raw_dir', str(raw), '--out_dir', str(tmp_path / 'out'), '--benchmarks', '[]',
                 '--progress', 'false')
    assert done.returncode == 0 and '"images"' in done.stdout, done.stderr
    assert (tmp_path / 'out' / 'data_list.parquet').exists()
    missing = shell('biovfm', 'curate', '--raw_dir', str(tmp_path / 'nowhere'), '--out_dir', str(tmp_path / 'o2'))
    assert_user_error(missing, 'biovfm curate', 1, 'nowhere')


@pytest.mark.parametrize('option, value, words', [('--workers', '0', 'workers=0 must be an integer >= 1'),
                                                  ('--views', 'axial,oblique', "views=['oblique']"),
                                                  ('--engine', 'spark', "engine='spark': use one of")])
def test_curate_refuses_an_out_of_range_option_before_any_work(tmp_path, option, value, words):
    "A curation option out of range is a usage error (status 2) raised before the raw folder is listed."
    refused = shell('biovfm', 'curate', '--raw_dir', str(tmp_path / 'nowhere'), '--out_dir', str(tmp_path / 'out'),
                    option, value)
    assert_user_error(refused, 'biovfm curate', 2, words)
    assert not (tmp_path / 'out').exists()


def test_probe_success_then_an_unknown_benchmark(tmp_path):
    done = shell('biovfm', 'probe', '--backbone', RANDOM_VIT, '--benchmarks', 'breastmnist', '--img_size', '32',
                 '--resize_from', '28', '--epochs', '1', '--aug_views', '0', '--n_boot', '10',
                 '--out_dir', str(tmp_path / 'probe'), '--cache_dir', str(tmp_path / 'cache'))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'probe' / 'metrics.csv').exists() and 'auc' in done.stdout
    unknown = shell('biovfm', 'probe', '--backbone', RANDOM_VIT, '--benchmarks', 'nosuchmnist',
                    '--out_dir', str(tmp_path / 'p2'))
    assert_user_error(unknown, 'biovfm probe', 1, "unknown benchmark 'nosuchmnist'")


def test_figures_success_and_a_missing_results_folder(tmp_path):
    done = shell('biovfm', 'figures', '--results', 'paper', '--out_dir', str(tmp_path / 'figs'), '--formats', '["png"]',
                 '--dpi', '40')
    assert done.returncode == 0 and 'files in' in done.stdout, done.stderr
    assert any((tmp_path / 'figs').glob('*.png'))
    missing = shell('biovfm', 'figures', '--results', str(tmp_path / 'nowhere'), '--out_dir', str(tmp_path / 'f2'))
    assert done.returncode == 0 and missing.returncode != 0, missing.stderr
    assert_user_error(missing, 'biovfm figures', missing.returncode, 'nowhere')


@pytest.mark.parametrize('launcher', [('biovfm', 'pretrain'), ('-m', 'biovfm.pretrain')])
def test_pretrain_success_and_a_missing_data_list(tmp_path, data_list, launcher):
    done = shell(*launcher, '--data_list', data_list, '--out_dir', str(tmp_path / 'run'), *TINY_PRETRAIN)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / 'run' / 'checkpoint.pt').exists()
    missing = shell(*launcher, '--data_list', str(tmp_path / 'no.parquet'), '--out_dir', str(tmp_path / 'r2'),
                    *TINY_PRETRAIN)
    assert_user_error(missing, 'biovfm pretrain', 1, 'no.parquet')


def test_experiments_success_and_an_unknown_matrix(tmp_path):
    done = shell('biovfm-experiments', 'plan', 'cpu_twin', '--runs-dir', str(tmp_path / 'runs'))
    assert done.returncode == 0 and 'model_scaling/' in done.stdout, done.stderr
    unknown = shell('biovfm-experiments', 'plan', 'nosuchmatrix', '--runs-dir', str(tmp_path / 'runs'))
    assert_user_error(unknown, 'biovfm-experiments', 1, 'nosuchmatrix')


def test_demo_help_and_an_out_dir_that_is_a_file(tmp_path):
    done = shell('-m', 'biovfm.demo', '--help')
    assert done.returncode == 0 and '--out_dir' in done.stdout and '--fresh' in done.stdout, done.stderr
    (tmp_path / 'a_file').write_text('')
    refused = shell('-m', 'biovfm.demo', '--out_dir', str(tmp_path / 'a_file'))
    assert_user_error(refused, 'python -m biovfm.demo', 1, 'a_file')


@pytest.mark.parametrize('argv, prog', [(['biovfm', 'probe', '--backbone', 'x', '--epoch', '3'], 'biovfm probe'),
                                        (['biovfm', 'curate', '--max_file', '3'], 'biovfm curate'),
                                        (['biovfm', 'pretrain', '--max_step', '3'], 'biovfm pretrain'),
                                        (['biovfm', 'figures', '--result', 'paper'], 'biovfm figures'),
                                        (['biovfm', 'nosuchcommand'], 'biovfm'),
                                        (['biovfm-experiments', 'nosuchaction'], 'biovfm-experiments'),
                                        (['-m', 'biovfm.demo', '--outdir', 'x'], 'python -m biovfm.demo')])
def test_a_misspelt_option_is_a_usage_error(argv, prog):
    assert_user_error(shell(*argv), prog, 2)


def test_debug_shows_the_traceback(tmp_path):
    argv = ['biovfm', 'probe', '--backbone', RANDOM_VIT, '--benchmarks', 'nosuchmnist', '--out_dir', str(tmp_path)]
    for done in (shell(*argv, debug=True), shell(*argv, '--debug')):
        assert done.returncode == 1 and 'Traceback' in done.stderr and 'ValueError' in done.stderr, done.stderr


@pytest.mark.parametrize('option, value, words', [('--epochs', '0', 'epochs=0 must be an integer >= 1'),
                                                  ('--n_boot', '-5', 'n_boot=-5 must be an integer >= 1'),
                                                  ('--img_size', '0', 'img_size=0 must be an integer >= 1'),
                                                  ('--aug_views', '-3', 'aug_views=-3 must be an integer >= -1'),
                                                  ('--batch_size', '0', 'batch_size=0 must be an integer >= 1'),
                                                  ('--max_rejected', '2', 'max_rejected=2 must be a fraction in [0, 1]')])
def test_a_probe_parameter_out_of_range_is_refused_before_any_work(tmp_path, option, value, words):
    done = shell('biovfm', 'probe', '--backbone', RANDOM_VIT, option, value, '--out_dir', str(tmp_path / 'probe'))
    assert_user_error(done, 'biovfm probe', 2, words)
    assert not (tmp_path / 'probe').exists()


def test_an_image_smaller_than_the_patch_is_refused_naming_both(tmp_path):
    done = shell('biovfm', 'probe', '--backbone', RANDOM_VIT, '--img_size', '4', '--resize_from', '28', '--epochs', '1',
                 '--n_boot', '10', '--out_dir', str(tmp_path / 'probe'), '--cache_dir', str(tmp_path / 'cache'))
    assert_user_error(done, 'biovfm probe', 1, 'img_size=4 is below the patch size 8')


@pytest.mark.parametrize('option, value, words', [('--lr', '0', 'lr=0 must be a number in (0, inf)'),
                                                  ('--warmup_steps', '5', 'warmup_steps=5 must be below max_steps=5'),
                                                  ('--batch_size', '0', 'batch_size=0 must be >= 1')])
def test_a_pretraining_parameter_out_of_range_is_refused_before_any_work(tmp_path, option, value, words):
    done = shell('-m', 'biovfm.pretrain', '--method', 'mae', '--img_size', '32', '--max_steps', '5', option, value,
                 '--out_dir', str(tmp_path / 'run'))
    assert_user_error(done, 'biovfm pretrain', 2, words)
    assert not (tmp_path / 'run').exists()


def test_rejected_inputs_are_reported_and_bounded(tmp_path):
    "3 of 156 images unreadable: above max_rejected=1% the probe fails naming the list; at 5% it reports them."
    from biovfm.benchmarks import load_medmnist, write_labelled_folder
    import pandas as pd
    images, labels = load_medmnist('breastmnist', 'test')
    folder = write_labelled_folder(tmp_path / 'bus', images, labels)
    for i in (3, 50, 100):
        (folder / 'img' / f'{i:05d}.png').write_bytes(b'not a png')
    argv = ['biovfm', 'probe', '--backbone', RANDOM_VIT, '--benchmarks', '', '--dataset_dir', str(folder),
            '--img_size', '32', '--epochs', '1', '--aug_views', '0', '--n_boot', '10', '--out_dir', str(tmp_path / 'p'),
            '--cache_dir', str(tmp_path / 'cache')]
    refused = shell(*argv)
    assert_user_error(refused, 'biovfm probe', 1, '3 of 156 images (1.9%) were rejected, above max_rejected=0.01',
                      str(tmp_path / 'p' / 'rejects_bus.csv'))
    done = shell(*argv, '--max_rejected', '0.05')
    assert done.returncode == 0, done.stderr
    assert f"bus: 3 of 156 images rejected (unreadable), listed in {tmp_path / 'p' / 'rejects_bus.csv'}" in done.stdout
    assert pd.read_csv(tmp_path / 'p' / 'probe_runs.csv')['n_rejected'].tolist() == [3]
