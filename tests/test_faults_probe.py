"""Probing faults: labelled folders that would give silent wrong or NaN metrics are refused by line, and results
are keyed by everything that defines them (weights, data, options, epochs) so a changed input is probed again."""
from pathlib import Path
import numpy as np
import pandas as pd
import pytest

from biovfm.core import read_table
from biovfm.benchmarks import load_medmnist
from biovfm.backbones import save_backbone
from biovfm import probe as P, metrics as M, backbones as BK, benchmarks as B

SPEC = 'random:vit_tiny_patch16_224:patch_size=7'  # 16 tokens at 28 px: fast on CPU


@pytest.fixture
def folder(tmp_path) -> Path:
    "Real BreastMNIST test images (156, binary) as a labelled folder without a split column."
    images, labels = load_medmnist('breastmnist', 'test')
    return B.write_labelled_folder(tmp_path/'bus', images, labels)


def edit_labels(folder:Path, change) -> pd.DataFrame:
    labels = pd.read_csv(folder/'labels.csv', dtype=str, keep_default_na=False)
    change(labels)
    labels.to_csv(folder/'labels.csv', index=False)
    return labels


def test_one_blank_split_cell_is_refused_not_resplit(folder):
    def splits(df): df['split'] = (['train'] * 100 + ['val'] * 20 + ['test'] * (len(df) - 120))
    labels = edit_labels(folder, splits)
    data, _ = B.load_labelled_folder(folder, 28)   # the user's split is kept exactly
    assert len(data.y['train']) == 100 and len(data.y['val']) == 20
    labels.loc[130, 'split'] = ''
    labels.to_csv(folder/'labels.csv', index=False)
    with pytest.raises(ValueError, match=r'blank split cells: .*labels.csv line 132'):
        B.load_labelled_folder(folder, 28)


def test_entirely_blank_split_column_means_no_split(folder, tmp_path):
    edit_labels(folder, lambda df: df.insert(2, 'split', ''))
    data, _ = B.load_labelled_folder(folder, 28, out_dir=tmp_path/'out')
    assert (tmp_path/'out'/'splits'/'bus.csv').exists() and len(data.y['test']) > 0


def test_unknown_split_value_is_named(folder):
    edit_labels(folder, lambda df: df.insert(2, 'split', ['train'] * 100 + ['validation'] * 20 + ['test'] * 36))
    with pytest.raises(ValueError, match=r"not train, val or test: .*lines 102 \('validation'\)"):
        B.load_labelled_folder(folder, 28)


def test_one_based_labels_are_refused(folder):
    edit_labels(folder, lambda df: df.__setitem__('label', (df.label.astype(int) + 1).astype(str)))
    with pytest.raises(ValueError, match=r'class\(es\) \[0\] have no image .* renumbered to 0..K-1'):
        B.load_labelled_folder(folder, 28)


def test_single_class_is_refused(folder):
    edit_labels(folder, lambda df: df.__setitem__('label', '0'))
    with pytest.raises(ValueError, match=r'a single class \(0\)'):
        B.load_labelled_folder(folder, 28)


@pytest.mark.parametrize('bad', ['malignant', '1.0', '-1', ''])
def test_non_integer_or_empty_labels_are_refused_by_line(folder, bad):
    def change(df): df.loc[[3, 9], 'label'] = bad
    edit_labels(folder, change)
    message = r'empty labels in a single-label folder: .*lines 5, 11' if bad == '' else rf"lines 5 \('{bad}'\), 11"
    with pytest.raises(ValueError, match=message):
        B.load_labelled_folder(folder, 28)


@pytest.mark.parametrize('text,message', [('', 'labels.csv is empty'), ('path,label\n', 'header but no rows'),
                                          ('file,y\na.png,0\n', r"missing column\(s\) \['label', 'path'\]")])
def test_empty_or_headless_labels_csv_is_named(folder, text, message):
    (folder/'labels.csv').write_text(text)
    with pytest.raises(ValueError, match=message):
        B.load_labelled_folder(folder, 28)


@pytest.mark.parametrize('path', ['../outside.png', '/etc/hostname'])
def test_paths_outside_the_folder_are_refused(folder, path):
    edit_labels(folder, lambda df: df.__setitem__('path', [path] + list(df.path[1:])))
    with pytest.raises(ValueError, match=r'outside .*line 2'):
        B.load_labelled_folder(folder, 28)


def test_a_split_without_a_class_is_refused(folder):
    def change(df):
        df['split'] = 'train'
        df.loc[df.index[:20], 'split'] = 'val'
        test_rows = df.index[(df.label == '0') & (df.index >= 20)][:30]   # the test split: class 0 only
        df.loc[test_rows, 'split'] = 'test'
    edit_labels(folder, change)
    with pytest.raises(ValueError, match=r'in the test split class\(es\) \[1\] have no image'):
        B.load_labelled_folder(folder, 28)


def test_multilabel_class_always_positive_in_a_split_is_refused(folder):
    def change(df):
        df['label'] = [f'{k}|2' for k in df.label]   # class 2 is positive everywhere
    edit_labels(folder, change)
    with pytest.raises(ValueError, match=r'class\(es\) \[2\] have only positives or only negatives'):
        B.load_labelled_folder(folder, 28)


def test_all_images_unreadable_names_a_reason_and_writes_the_rejects(folder, tmp_path):
    for png in (folder/'img').glob('*.png'): png.write_bytes(b'not a png')
    with pytest.raises(ValueError, match='no readable image; first: img/00000.png: unreadable image'):
        B.load_labelled_folder(folder, 28, out_dir=tmp_path/'out')
    assert len(pd.read_csv(tmp_path/'out'/'rejects_bus.csv')) == 156


def test_a_nan_metric_is_refused_not_written(folder, tmp_path):
    data, _ = B.load_labelled_folder(folder, 28)
    data.y['test'][:] = 0   # bypassing the folder checks: AUC is undefined on a one-class test split
    bb = BK.load_probe_backbone(SPEC, 28)
    with pytest.raises(ValueError, match=r"bus: \['auc'.*undefined on the test split"):
        P.probe_one(bb, data, epochs=1, aug_views=0, n_boot=20, cache_dir=tmp_path/'c', out_dir=tmp_path/'out')
    assert not (tmp_path/'out'/'predictions').exists()


def probe(backbone, folder, out, **kw):
    options = dict(epochs=2, aug_views=0, n_boot=50, cache_dir=out.parent/'cache', verbose=True) | kw
    P.probe_many([str(backbone)], benchmarks=[], out_dir=out, img_size=28, dataset_dir=folder, **options)
    return read_table(out/'probe_runs.csv')


def test_changed_labels_weights_or_epochs_are_probed_again_unchanged_ones_reused(folder, tmp_path, capsys):
    exported = tmp_path/'run'/'backbone'
    model = BK.load_probe_backbone(SPEC, 28, seed=1).model
    save_backbone(model, exported, 'vit_tiny_patch16_224', 28, 'mae', model_kwargs=dict(patch_size=7), steps=1)
    out = tmp_path/'out'
    first = probe(exported, folder, out)
    assert first.weights.iloc[0].startswith('blake2b:') and first.data_id.iloc[0].startswith('folder:bus:')
    again = probe(exported, folder, out)
    assert 'skipped' in capsys.readouterr().out and again.total_s.iloc[0] == first.total_s.iloc[0]

    edit_labels(folder, lambda df: df.__setitem__('label', (1 - df.label.astype(int)).astype(str)))   # relabelled
    relabelled = probe(exported, folder, out)
    assert 'data_id changed' in capsys.readouterr().out
    assert relabelled.data_id.iloc[0] != first.data_id.iloc[0] and len(relabelled) == 1

    model = BK.load_probe_backbone(SPEC, 28, seed=2).model   # retrained: other weights in the same folder
    save_backbone(model, exported, 'vit_tiny_patch16_224', 28, 'mae', model_kwargs=dict(patch_size=7), steps=2)
    retrained = probe(exported, folder, out)
    assert 'weights changed' in capsys.readouterr().out
    assert retrained.weights.iloc[0] != relabelled.weights.iloc[0]

    longer = probe(exported, folder, out, epochs=3)
    assert 'epochs changed' in capsys.readouterr().out and longer.epochs.iloc[0] == 3
    metrics = read_table(out/'metrics.csv', 'metrics')
    assert len(metrics) == len(M.METRICS) and metrics.value.notna().all()
