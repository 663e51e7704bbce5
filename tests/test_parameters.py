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


@pytest.mark.parametrize('notebook, typo', [('01_curate', 'raw_dri'), ('05_scaling', 'nboot'), ('06_figures', 'result'),
                                            ('07_experiments', 'dryrun'), ('08_demo', 'outdir')])
def test_every_stage_refuses_a_typo(tmp_path, notebook, typo):
    "The run stages other than 03/04 (above): the typo fails at the parameters cell, before any work."
    with pytest.raises(papermill.PapermillExecutionError, match=rf"unknown parameter\(s\) \['{typo}'\]; valid parameters"):
        papermill.execute_notebook(str(NBS/f'{notebook}.ipynb'), str(tmp_path/'out.ipynb'), parameters={typo: 1},
                                   kernel_name='python3', cwd=str(NBS), progress_bar=False)


@pytest.mark.parametrize('notebook', sorted(NOTEBOOKS_WITHOUT_RUN))
def test_a_notebook_without_a_run_refuses_parameters(tmp_path, notebook):
    "papermill injects parameters into any notebook (at the top when it has no parameters cell): refused at once."
    with pytest.raises(papermill.PapermillExecutionError, match=rf"{notebook} takes no parameters .*\['img_size'\]"):
        papermill.execute_notebook(str(NBS/f'{notebook}.ipynb'), str(tmp_path/'out.ipynb'), parameters={'img_size': 64},
                                   kernel_name='python3', cwd=str(NBS), progress_bar=False)


def _options_without_help(parser):
    "The `--name` options of `parser` whose help is missing or only states the default."
    return sorted(action.option_strings[-1] for action in parser._actions
                  if action.option_strings and action.help != '==SUPPRESS=='
                  and (not action.help or action.help.startswith('(default')))


@pytest.mark.parametrize('command', ['pretrain', 'probe', 'curate', 'figures'])
def test_every_option_of_a_subcommand_has_help(command):
    "Help comes from the parameters cell's comments, else the run function's / config dataclass's (biovfm.cli)."
    from biovfm.cli import build_parser
    subcommand = build_parser(command).subcommands[command]
    assert _options_without_help(subcommand) == [], command
    assert '(default: ' in subcommand.format_help() and len(subcommand._action_groups) > 3, subcommand.format_help()


def test_the_other_console_scripts_have_help_for_every_option():
    from biovfm.experiments import experiments_parser
    from biovfm.demo import demo_parser
    for parser in (experiments_parser(), demo_parser()):
        assert _options_without_help(parser) == [], parser.prog


def test_a_pretraining_option_has_one_help_text():
    "A parameter the cell sets (a Config field, a method's option) is documented there only: no second text to keep in sync."
    import inspect
    from biovfm.console import parameters_cell, source_docs
    from biovfm.pretrain import Config, option_classes
    cell, config = source_docs(parameters_cell('03_pretrain')), {}
    for dataclass in (Config, *option_classes().values()):
        config |= source_docs(inspect.getsource(dataclass))
    assert [name for name in cell if config.get(name, ('', ''))[1]] == []
    assert set(cell) <= set(config)


def _cell_is_config(notebook: str, config_class, before: list, after: list, cpu_sized: set):
    "`notebook`'s parameters cell: `config_class`'s fields with their order, help and defaults (`cpu_sized` differ)."
    import inspect
    from dataclasses import fields
    from biovfm.console import parameters_cell, source_docs
    cell = parameters_cell(notebook)
    assigned = {}
    exec(cell, {}, assigned)  # papermill's literal assignments
    config = {field.name: field.default for field in fields(config_class)}
    assert list(assigned) == [*before, *config, *after]
    assert {name for name in config if assigned[name] != config[name]} == cpu_sized
    cell_docs, config_docs = source_docs(cell), source_docs(inspect.getsource(config_class))
    assert {name: cell_docs[name] for name in config} == config_docs


def test_the_probe_parameters_cell_is_probe_config():
    "nbs/04_probe's parameters cell: backbone, then ProbeConfig (img_size, resize_from CPU-sized), nothing else."
    from biovfm.probe import ProbeConfig
    _cell_is_config('04_probe', ProbeConfig, ['backbone'], [], {'img_size', 'resize_from'})


def test_the_curate_parameters_cell_is_curate_config():
    "01_curate's parameters cell is CurateConfig (slice_step CPU-sized), then demo."
    from biovfm.curate import CurateConfig
    _cell_is_config('01_curate', CurateConfig, [], ['demo'], {'slice_step'})
