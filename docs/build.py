"""`make docs`: the compendium as a static site. Every notebook of nbs/ is executed on the embedded data the way
`nbdev_test` runs it (cells flagged `slow` or `cuda`, or `eval: false`, are shown but not run), its outputs kept,
then Sphinx (myst-nb, sphinx-book-theme) renders the executed copies with nbs/index.ipynb as the home page.

Why Sphinx + myst-nb: nbdev's own route (Quarto) downloads its binary from GitHub when installed, which fails on
machines that only reach package registries; Sphinx, myst-nb and the theme are plain PyPI packages, so `make docs`
works wherever `make test` does. The notebooks are executed here with nbdev's executor (execnb) rather than by
myst-nb because only nbdev knows the skip flags.

    python docs/build.py [--out _docs] [--only 00_core,index] [--timeout 1800]
"""
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_FLAGS = {'slow', 'cuda'}


def _skipped(cell) -> bool:
    "True for cells nbdev_test would not run: markdown, `#| slow`, `#| cuda`, `#| eval: false`, `nbdev_export()`."
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    for line in cell.source.splitlines():
        if not line.startswith('#|'): continue
        words = set(re.split(r'[\s,]+', line[2:].strip().lower()))
        if words & SKIP_FLAGS or line.replace(' ', '').lower() == '#|eval:false': return True
    return False


def execute(notebook:Path, dest:Path, timeout:int|None=None) -> float:
    "Run `notebook` in its folder with execnb, outputs written into `dest`; returns seconds. Raises on a failing cell."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    nb = read_nb(notebook)
    start = time.time()
    shell = CaptureShell(notebook, timeout=timeout)
    os.environ.setdefault('IN_TEST', '1')
    with working_directory(notebook.parent):
        shell.run_all(nb, exc_stop=True, preproc=_skipped)
    write_nb(nb, dest)
    return time.time() - start


def add_toctree(index:Path, pages:list[str]):
    "Append a hidden toctree (the site's navigation) to the executed home page."
    nb = json.loads(index.read_text())
    toctree = '```{toctree}\n:hidden:\n:maxdepth: 1\n\n' + '\n'.join(pages) + '\n```'
    nb['cells'].append(dict(cell_type='markdown', id='toctree', metadata={}, source=toctree))
    index.write_text(json.dumps(nb, indent=1, ensure_ascii=False))


def build(out:Path, only:list[str]|None=None, timeout:int|None=None) -> Path:
    "Execute the notebooks into out/src and render them into out/html; returns the HTML folder."
    src, html = out/'src', out/'html'
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    shutil.copytree(ROOT/'figures', src/'figures', ignore=shutil.ignore_patterns('*.md', '*.csv', '*.tex', '*.pdf'))
    notebooks = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if only is None or p.stem in only)
    pages = []
    for notebook in notebooks:
        dest = src/notebook.name
        seconds = execute(notebook, dest, timeout)
        text = dest.read_text().replace('](../figures/', '](figures/').replace('src=\\"../figures/', 'src=\\"figures/')
        dest.write_text(text)
        print(f"executed {notebook.name} in {seconds:.0f} s", flush=True)
        if notebook.stem != 'index': pages.append(notebook.stem)
    if (src/'index.ipynb').exists(): add_toctree(src/'index.ipynb', pages)
    shutil.rmtree(html, ignore_errors=True)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-c', str(ROOT/'docs'), str(src), str(html)]
    subprocess.run(cmd, check=True)
    print(f"site: {html/'index.html'}")
    return html


def main(argv=None):
    ap = argparse.ArgumentParser('python docs/build.py', description=__doc__.split('\n\n')[0])
    ap.add_argument('--out', default=str(ROOT/'_docs'))
    ap.add_argument('--only', help='comma-separated notebook names (without .ipynb); default: all')
    ap.add_argument('--timeout', type=int, default=None, help='seconds per cell')
    a = ap.parse_args(argv)
    build(Path(a.out), a.only.split(',') if a.only else None, a.timeout)


if __name__ == '__main__':
    main()
