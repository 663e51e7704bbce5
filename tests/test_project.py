"Plain tests of the project's configuration: settings.ini, environment.yml, constraints and layout agree."
import re, shlex
from configparser import ConfigParser
from pathlib import Path
import yaml

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
    assert pip == ['-e .[dev]'], 'environment.yml must install exactly the set declared in settings.ini'
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
        assert len(tagged) == 1, f"{nb.name}: {len(tagged)} cells tagged 'parameters'"
        assert not any(c.get('outputs') for c in cells if c.cell_type == 'code'), f"{nb.name} has outputs: run nbdev_clean"

def test_notebooks_name_their_kernel():
    "papermill needs the kernel's language in the notebook metadata (nbdev_clean keeps `kernelspec`)."
    import nbformat
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        ks = nbformat.read(nb, as_version=4).metadata.get('kernelspec', {})
        assert ks.get('language') == 'python' and ks.get('name') == 'python3', nb.name
