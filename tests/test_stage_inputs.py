"""Every run stage, run headless by papermill on inputs that are not the demo's, fails with a message naming the bad
input (curation, which turns bad files into rejects and exits 0, is tested in test_curate.py)."""
from pathlib import Path
import pandas as pd
import papermill
import pytest
from biovfm.core import write_table
from biovfm.benchmarks import load_medmnist, write_labelled_folder
from biovfm.testing import synthetic_metrics

NBS = Path(__file__).resolve().parents[1]/'nbs'


def run_headless(notebook, tmp_path, **parameters):
    return papermill.execute_notebook(f'headless:{NBS/notebook}.ipynb', str(tmp_path/f'{notebook}.out.ipynb'),
                                      parameters=parameters, kernel_name='python3', cwd=str(NBS), progress_bar=False)


def test_pretraining_names_a_missing_data_list(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match='nope.parquet'):
        run_headless('03_pretrain', tmp_path, data_list=str(tmp_path/'nope.parquet'), out_dir=str(tmp_path/'run'))


def test_probing_names_the_bad_labels_of_a_users_folder(tmp_path):
    images, labels = load_medmnist('breastmnist', 'test')
    folder = write_labelled_folder(tmp_path/'bus', images[:30], labels[:30])
    table = pd.read_csv(folder/'labels.csv', dtype=str)
    table.loc[3, 'label'] = 'malignant'
    table.to_csv(folder/'labels.csv', index=False)
    with pytest.raises(papermill.PapermillExecutionError, match=r"labels.csv.*malignant"):
        run_headless('04_probe', tmp_path, benchmarks=f'folder:{folder}', out_dir=str(tmp_path/'probe'))


@pytest.mark.parametrize('notebook', ['05_scaling', '06_figures'])
def test_scaling_and_figures_name_a_bad_metrics_file(tmp_path, notebook):
    metrics = synthetic_metrics()
    metrics.loc[0, 'value'] = 93.2   # a percentage where a fraction belongs
    write_table(metrics, tmp_path/'own'/'run1'/'metrics.csv', 'metrics')
    with pytest.raises(papermill.PapermillExecutionError, match=r"must be in \[0, 1\].*run1/metrics.csv has 93.2"):
        run_headless(notebook, tmp_path, results=str(tmp_path/'own'))


def test_the_launcher_names_an_unknown_matrix(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="no_such_matrix"):
        run_headless('07_experiments', tmp_path, matrix='no_such_matrix')
