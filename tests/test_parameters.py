"One parameter path: every stage notebook refuses an unknown papermill parameter at once, naming the valid ones."
from pathlib import Path
import papermill, pytest
from conftest import NOTEBOOKS_WITHOUT_RUN

NBS = Path(__file__).resolve().parents[1]/'nbs'

@pytest.mark.parametrize('notebook, typo', [('03_pretrain', 'max_step'), ('03_pretrain', 'batchsize'),
                                            ('04_probe', 'epoch')])
def test_unknown_parameter_fails_with_the_valid_ones(tmp_path, notebook, typo):
    with pytest.raises(papermill.PapermillExecutionError, match=rf"unknown parameter\(s\) \['{typo}'\]; valid parameters"):
        papermill.execute_notebook(str(NBS/f'{notebook}.ipynb'), str(tmp_path/'out.ipynb'), parameters={typo: 5},
                                   kernel_name='python3', cwd=str(NBS), progress_bar=False)

def test_every_parameters_cell_parses_without_warnings():
    from papermill.translators import PythonTranslator
    import nbformat
    for path in sorted(NBS.glob('[0-9]*.ipynb')):
        notebook = nbformat.read(path, as_version=4)
        cells = [c for c in notebook.cells if 'parameters' in c.metadata.get('tags', [])]
        assert len(cells) == (path.stem not in NOTEBOOKS_WITHOUT_RUN), f"{path.name}: {len(cells)} parameters cells"
        if not cells:
            continue
        cell = cells[0]
        assignments = [line for line in cell.source.splitlines() if line and not line.startswith((' ', '#'))]
        assert len(PythonTranslator.inspect(cell)) == len(assignments), path.name
