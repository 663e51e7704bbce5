"A stage notebook's `## The run` section reports properties of the user's data and never asserts them."
import json, re
from pathlib import Path
import pytest
from biovfm.core import repo_root
from biovfm.headless import run_section

ASSERTION = re.compile(r'(^|\W)(assert\b|test_(eq|ne|fail|close|is|warns|eq_type|shuffled|stdout)\s*\()')


def run_section_assertions(notebook: dict) -> list:
    "'cell id: line' for every assert / fastcore test call in the code cells of a notebook's run section."
    cells = notebook['cells']
    try:
        first, end = run_section(cells)
    except ValueError:  # a teaching-only notebook has no run section
        return []
    found = []
    for cell in cells[first:end]:
        if cell['cell_type'] != 'code':
            continue
        for line in ''.join(cell['source']).splitlines():
            code = line.split('#', 1)[0]  # a comment may mention assert
            if ASSERTION.search(code):
                found.append(f"{cell.get('id')}: {line.strip()}")
    return found


NOTEBOOKS = sorted((repo_root() / 'nbs').glob('*.ipynb'))


def _notebook(*code_cells, heading='## The run') -> dict:
    markdown = dict(cell_type='markdown', source=[heading])
    return dict(cells=[markdown] + [dict(cell_type='code', id=f'c{i}', source=[src]) for i, src in enumerate(code_cells)])


def test_the_scan_finds_assertions_in_a_run_section_only():
    found = run_section_assertions(_notebook('x = 1', 'test_eq(x, 1)', '  assert x', 'ft.test_fail(f)'))
    assert found == ['c1: test_eq(x, 1)', 'c2: assert x', 'c3: ft.test_fail(f)']
    assert run_section_assertions(_notebook('print(x)  # assert nothing', 'my_test_eq(1, 1)')) == []
    assert run_section_assertions(_notebook('test_eq(x, 1)', heading='## A lesson')) == []


@pytest.mark.parametrize('path', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_run_section_asserts_on_user_data(path):
    found = run_section_assertions(json.loads(Path(path).read_text(encoding='utf-8')))
    assert not found, f"{path.name}: the run section asserts on run outputs (report them; assert in lessons): {found}"
