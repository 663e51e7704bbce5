"Every stage notebook in nbs/ is executed as a test, the way `nbdev_test` does (same flags, same machinery)."
import io, contextlib
from configparser import ConfigParser
from pathlib import Path
import pytest
from nbdev.test import test_nb as run_nb

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT/'nbs').glob('[0-9]*.ipynb') if not p.name.endswith('_draft.ipynb'))

def _skip_flags():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    return cfg['DEFAULT'].get('tst_flags', '').split()

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        ok, secs = run_nb(nb, skip_flags=_skip_flags(), basepath=ROOT)
    assert ok, f"{nb.name} failed:\n{err.getvalue()[-6000:]}"

def test_there_are_stage_notebooks():
    assert NBS and NBS[0].name == '00_core.ipynb'
