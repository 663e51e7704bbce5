"Plain tests of the project's configuration: settings.ini, environment.yml, constraints and layout agree."
import re, shlex
from configparser import ConfigParser
from pathlib import Path
import yaml
from conftest import NOTEBOOKS_WITHOUT_RUN

ROOT = Path(__file__).resolve().parents[1]

def _cfg():
    cfg = ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini'); return cfg['DEFAULT']

def test_layout():
    for p in ['nbs', 'biovfm', 'settings.ini', 'environment.yml', 'data_lists', 'figures', 'tests', 'README.md',
              'Makefile', '.ci/run', 'constraints.txt']:
        assert (ROOT/p).exists(), p

def test_settings_for_nbdev_and_papermill():
    c = _cfg()
    assert c['lib_name'] == 'biovfm' and c['nbs_path'] == 'nbs'
    assert set(c['tst_flags'].split()) == {'slow', 'cuda'}
    assert 'tags' in c['allowed_cell_metadata_keys'].split(), 'nbdev_clean must keep the papermill parameters tag'
    dev = shlex.split(c['dev_requirements'])
    assert 'nbdev==2.4.14' in dev and 'execnb<0.2' in dev

def test_environment_yml_installs_settings_ini():
    env = yaml.safe_load((ROOT/'environment.yml').read_text())
    assert env['name'] == 'biovfm' and 'conda-forge' in env['channels']
    deps = env['dependencies']
    assert any(str(d).startswith('python=3.11') for d in deps)
    pip = next(d['pip'] for d in deps if isinstance(d, dict))
    assert pip[-1] == '-e .[dev]', 'environment.yml must install the set declared in settings.ini'
    torch_lines = [l for l in pip if l.startswith('torch')]
    assert 'torch>=2.7' in torch_lines and any('download.pytorch.org/whl/cu' in l for l in pip), \
        'the GPU env installs a CUDA torch with FSDP2 (>= 2.7)'
    # the version in the package agrees with settings.ini
    import biovfm
    assert biovfm.__version__ == _cfg()['version']

def test_constraints_pin_requirements():
    reqs = {re.split(r'[<>=!~\[]', r)[0] for r in shlex.split(_cfg()['requirements'])}
    pins = [l.split('==')[0] for l in (ROOT/'constraints.txt').read_text().splitlines() if '==' in l and not l.startswith('#')]
    assert pins and all(p in reqs for p in pins)

def test_every_notebook_has_one_parameters_cell():
    import nbformat
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        cells = nbformat.read(nb, as_version=4).cells
        tagged = [c for c in cells if 'parameters' in c.get('metadata', {}).get('tags', [])]
        expected = 0 if nb.stem in NOTEBOOKS_WITHOUT_RUN else 1
        assert len(tagged) == expected, f"{nb.name}: {len(tagged)} cells tagged 'parameters'"
        assert not any(c.get('outputs') for c in cells if c.cell_type == 'code'), f"{nb.name} has outputs: run nbdev_clean"

def test_notebooks_name_their_kernel():
    "papermill needs the kernel's language in the notebook metadata (nbdev_clean keeps `kernelspec`)."
    import nbformat
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        ks = nbformat.read(nb, as_version=4).metadata.get('kernelspec', {})
        assert ks.get('language') == 'python' and ks.get('name') == 'python3', nb.name

def test_requirement_floors_match_the_code():
    "FSDP2 (fully_shard) needs torch >= 2.6, np.bitwise_count numpy >= 2, pydicom.pixels pydicom >= 3."
    reqs = {re.split(r'[<>=!~\[]', r)[0]: r for r in shlex.split(_cfg()['requirements'])}
    for req in ('torch>=2.7', 'torchvision>=0.22', 'numpy>=2.0', 'pydicom>=3.0', 'pandas>=2.2.2'):
        assert reqs[re.split(r'[<>=]', req)[0]].startswith(req), (req, reqs[re.split(r'[<>=]', req)[0]])
    code = '\n'.join(p.read_text() for p in (ROOT/'biovfm').glob('*.py'))
    assert 'fully_shard' in code and 'bitwise_count' in code and 'pydicom.pixels' in code

def test_no_tracked_file_refers_to_the_workshop_folder():
    "Users have no shared folder beside their clone: the repository resolves data itself (data/, BIOVFM_DATA)."
    import subprocess
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    needle = '..' + '/shared'
    hits = [f for f in files if (ROOT/f).is_file() and (ROOT/f).stat().st_size < 5_000_000
            and needle in (ROOT/f).read_text(errors='ignore')]
    assert not hits, hits

def test_embedded_data_is_complete():
    from biovfm.core import check_manifest
    assert len(check_manifest(ROOT/'data')) == 0

def _module_imports() -> dict:
    "{module: (notebook stem, {biovfm modules it imports})}, at the top of a module or inside a function alike."
    import ast
    graph = {}
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        match = re.search(r'#\| default_exp ([\w.]+)', nb.read_text())
        if not match: continue
        imported = set()
        for node in ast.walk(ast.parse((ROOT/'biovfm'/f'{match.group(1)}.py').read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level or node.module.startswith('biovfm'):
                    imported.add(node.module.removeprefix('biovfm.').lstrip('.'))
            elif isinstance(node, ast.Import):
                imported |= {a.name.removeprefix('biovfm.') for a in node.names if a.name.startswith('biovfm.')}
        graph[match.group(1)] = (nb.stem, imported)
    return graph


def test_no_module_imports_a_later_stage():
    "Stages build on earlier ones only (stage = the notebook's number: 00 core ... 09 cli); the modules of one "
    "stage (01_curate and its 01a-01d parts, 03_pretrain and its methods) may import each other, without cycles."
    graph = _module_imports()
    stage = {module: re.match(r'\d+', stem).group() for module, (stem, _) in graph.items()}
    later = [f'{module} ({stem}) imports {name} ({graph[name][0]})' for module, (stem, imported) in graph.items()
             for name in imported if name in stage and stage[name] > stage[module]]
    assert not later, later


def test_no_import_cycles():
    "No module imports itself through others (a cycle makes import order matter and splits badly)."
    modules = _module_imports()
    graph = {module: (imported & set(modules)) - {module} for module, (_, imported) in modules.items()}
    def reaches(start, goal, seen):
        for name in graph[start] - seen:
            if name == goal or reaches(name, goal, seen | {name}): return True
        return False
    cycles = [module for module in graph if reaches(module, module, set())]
    assert not cycles, {module: sorted(graph[module]) for module in cycles}
