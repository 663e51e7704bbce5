"The scaling and figures notebooks through their papermill interface, on a partial own-results folder."
import subprocess, sys
from pathlib import Path
import pandas as pd
from biovfm.core import SCHEMAS, write_table, read_table
from biovfm.testing import synthetic_metrics

ROOT = Path(__file__).resolve().parents[1]
PM = [sys.executable, '-m', 'papermill', '-k', 'python3', '--no-progress-bar']

def test_papermill_interface_own_results(tmp_path):
    "`papermill 05 -p results DIR -p out_dir OUT` from a foreign cwd, then the figures drawn from those files."
    res = tmp_path/'results'
    write_table(synthetic_metrics(benchmarks=('breastmnist', 'pneumoniamnist'), archs=('vit_tiny', 'vit_base')), res/'probe'/'metrics.csv', 'metrics')
    out = tmp_path/'scaling'
    subprocess.run(PM + [str(ROOT/'nbs'/'05_scaling.ipynb'), str(tmp_path/'05.ipynb'), '-p', 'results', str(res),
                         '-p', 'out_dir', str(out), '-p', 'x_axis', 'backbone', '-p', 'n_boot', '200'], check=True, cwd=tmp_path)
    for name in ('slopes', 'task_properties', 'correlations'):
        assert list(read_table(out/f'{name}.csv').columns) == SCHEMAS[name]
    sl = read_table(out/'slopes.csv', 'slopes')
    assert set(sl.benchmark) == {'breastmnist', 'pneumoniamnist', 'mean'} and (sl.x_axis == 'backbone_params_m').all()
    assert ((sl.slope - 0.02).abs() < 0.005).all()
    # the figures stage reads those files (in-process: the 06 notebook's own papermill run is `make figures`)
    from biovfm.figures import make_figures
    figs = tmp_path/'figs'
    made = make_figures(res, figs, scaling_dir=out, x_axis='backbone', formats=('png',), dpi=40)
    names = {p.name for p in made['written']}
    assert {'fig2a_model_scaling.png', 'fig3_per_benchmark_scaling.png', 'fig4_slopes_correlations.png',
            'table1.csv', 'table1.md', 'table1.tex'} <= names
    assert 'fig2b_data_scaling' in made['skipped']  # no data_scaling.csv in this folder
    assert len(pd.read_csv(figs/'table1.csv')) == 8  # 2 methods x 2 sizes x 2 seeds: the probe's Table 1, a row per seed
