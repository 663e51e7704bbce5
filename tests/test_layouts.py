"Curation on the layouts collections come in (TCIA/IDC DICOM trees, BIDS, flat folders, a metadata CSV) and the modality precedence."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from biovfm.core import repo_root
from biovfm.curate import curate, plan_jobs
from biovfm.testing import make_bids_dataset, make_csv_folder, make_dicom_tree, make_flat_folder

RAW = repo_root() / 'data' / 'raw'
TINY = dict(img_size=32, slice_step=64, benchmarks=(), images_per_tar=0, progress=False)


def _modalities(plan_or_inputs) -> dict:
    "{job: 'modality (modality_from)'}"
    return {j: f'{m} ({o})' for j, m, o in plan_or_inputs[['job', 'modality', 'modality_from']].itertuples(index=False)}


def test_precedence_manifest_header_bids_folder_unknown(tmp_path):
    "Each source of a modality is tried only when the ones above it name none."
    raw = tmp_path / 'raw'
    copies = {
        'MR/ct_header.dcm': 'ct/pydicom/CT_small.dcm',  # header CT beats folder MR
        'MR/manifest_says_us.dcm': 'ct/pydicom/CT_small.dcm',  # manifest US beats header CT and folder MR
        'xray/sub-02_ct.dcm': 'mr/pydicom/MR_small.dcm',  # header MR beats BIDS _ct and folder xray
        'CT/sub-01_T1w.nii.gz': 'mr/nipy/anatomical.nii.gz',  # BIDS T1w beats folder CT
        'site-a/day-2/xray/img.png': 'xray/torchxrayvision/00000001_000.png',  # a folder at depth 3
        'site-a/img.png': 'microscopy/scikit-image/cell.png',  # nothing names it
        'endo/nema.dcm': 'endoscopy/dwv/nema-vl2_j2kr.dcm',  # header OT names none, folder 'endo' neither
    }
    for dest, src in copies.items():
        (raw / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(RAW / src, raw / dest)
    (raw / 'MANIFEST.tsv').write_text('file\tmodality\tanatomy\nMR/manifest_says_us.dcm\tUltrasound\tfetus\n')
    plan = plan_jobs(raw)
    assert _modalities(plan) == {
        'MR/ct_header.dcm': 'CT (header)',
        'MR/manifest_says_us.dcm': 'US (manifest)',
        'xray/sub-02_ct.dcm': 'MR (header)',
        'CT/sub-01_T1w.nii.gz': 'MR (bids)',
        'site-a/day-2/xray/img.png': 'X-Ray (folder)',
        'site-a/img.png': 'unknown (unknown)',
        'endo/nema.dcm': 'unknown (unknown)',
    }
    anatomy = dict(zip(plan.job, plan.anatomy))
    assert anatomy['MR/manifest_says_us.dcm'] == 'fetus' and anatomy['MR/ct_header.dcm'] == 'unspecified'


def test_manifest_without_a_path_column_is_refused(tmp_path):
    raw = make_flat_folder(tmp_path / 'raw')
    (raw / 'labels.csv').write_text('name,modality\nimg_001.png,CT\n')
    with pytest.raises(ValueError, match=r"labels.csv: needs a column of file paths .*'file', 'path'"):
        plan_jobs(raw)


def test_dicom_tree(tmp_path):
    raw = make_dicom_tree(tmp_path / 'raw')
    summary = curate(raw_dir=raw, out_dir=tmp_path / 'out', **TINY)
    inputs = pd.read_csv(tmp_path / 'out' / 'inputs.csv')
    series = inputs[inputs.kind == 'dicom_series']
    assert len(series) == 1 and series.job.iloc[0].startswith('VS-SEG-001/1.2-study/series-')  # two folders, one series
    plan = pd.read_parquet(tmp_path / 'out' / 'plan.parquet')
    assert len(plan[plan.kind == 'dicom_series'].files.iloc[0]) == 10
    assert sorted(_modalities(inputs).values()) == ['CT (header)', 'MR (header)', 'US (header)', 'X-Ray (header)']
    assert summary['unknown_modality'] == 0 and set(summary['by_modality']) == {'CT', 'MR', 'US', 'X-Ray'}
    dl = pd.read_parquet(tmp_path / 'out' / 'data_list.parquet')
    assert set(dl.anatomy[dl.modality == 'X-Ray']) == {'extremity'}  # BodyPartExamined
    assert set(dl.source) == {'CHEST-9', 'ECHO-7', 'LIDC-0001', 'VS-SEG-001'}


def test_bids_dataset(tmp_path):
    raw = make_bids_dataset(tmp_path / 'bids')
    curate(raw_dir=raw, out_dir=tmp_path / 'out', frame_step=1, **TINY)
    inputs = pd.read_csv(tmp_path / 'out' / 'inputs.csv')
    assert _modalities(inputs) == {
        'sub-01/anat/sub-01_T1w.nii.gz': 'MR (bids)',
        'sub-01/dwi/sub-01_dwi.nii.gz': 'MR (bids)',
        'sub-02/ses-1/anat/sub-02_ses-1_FLAIR.nii.gz': 'MR (bids)',
        'sub-03/func/sub-03_task-rest_bold.nii.gz': 'MR (bids)',
    }  # participants.tsv, dataset_description.json and the sidecar JSON are not inputs
    dl = pd.read_parquet(tmp_path / 'out' / 'data_list.parquet')
    bold = dl[dl.src == 'sub-03/func/sub-03_task-rest_bold.nii.gz']
    assert sorted(set(bold.volume)) == [0, 1]  # a 4D run: one volume per time point
    assert set(dl.source) == {'bids'}  # the dataset's folder, not sub-01, sub-02, ...
    again = curate(raw_dir=raw, out_dir=tmp_path / 'out2', frame_step=2, **TINY)
    dl2 = pd.read_parquet(tmp_path / 'out2' / 'data_list.parquet')
    assert set(dl2.volume[dl2.src == bold.src.iloc[0]]) == {0} and again['unknown_modality'] == 0


def test_flat_folder_with_unknown_modalities(tmp_path, capsys):
    raw = make_flat_folder(tmp_path / 'raw')
    summary = curate(raw_dir=raw, out_dir=tmp_path / 'out', **TINY)
    printed = capsys.readouterr().out
    assert summary['by_modality'] == {'unknown': 5, 'CT': 1, 'MR': 1}  # the DICOMs' headers name theirs
    assert summary['unknown_modality'] == 5 and 'MANIFEST.tsv' in summary['modality_hint']
    assert summary['rejected_inputs'] == 1 and summary['rejects_by_reason'] == {'cannot read image': 1}
    assert "modality: 5 of 7 images 'unknown'; name their modality in a manifest" in printed
    assert f"rejected: 1 of 6 inputs, 1 reject rows (inputs, views or images) in {tmp_path / 'out' / 'rejects.csv'}" in printed
    saved = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert saved['unknown_modality'] == 5 and saved['by_modality']['unknown'] == 5


def test_folder_with_a_metadata_csv(tmp_path):
    raw = make_csv_folder(tmp_path / 'raw')
    curate(raw_dir=raw, out_dir=tmp_path / 'out', **TINY)
    dl = pd.read_parquet(tmp_path / 'out' / 'data_list.parquet')
    got = {s: (m, a, d) for s, m, a, d in dl[['src', 'modality', 'anatomy', 'modality_detail']].itertuples(index=False)}
    assert got == {
        'images/0001.jpg': ('Fundus', 'retina', 'Fundus photograph'),
        'images/0002.png': ('Microscopy', 'cells', 'Fluorescence microscopy'),
        'images/0003.jpg': ('Microscopy', 'unspecified', 'Histopathology (H&E)'),
        'images/0004.dcm': ('US', 'fetus', 'Ultrasound (obstetric)'),
    }


def test_flat_folder_curates_through_the_notebook_headless(tmp_path):
    "papermill on the stage notebook's run: a flat folder of mostly unknown modalities completes and says how many."
    raw = make_flat_folder(tmp_path / 'raw')
    out_nb, out_dir = tmp_path / 'run.ipynb', tmp_path / 'out'
    command = [str(Path(sys.executable).parent / 'papermill'), '-k', 'python3', 'headless:nbs/01_curate.ipynb', str(out_nb),
               '-p', 'raw_dir', str(raw), '-p', 'out_dir', str(out_dir), '-p', 'img_size', '32', '-p', 'slice_step', '64',
               '-p', 'images_per_tar', '0']
    env = os.environ | dict(MPLBACKEND='Agg', HF_HUB_OFFLINE='1')
    done = subprocess.run(command, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = ''.join(
        ''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
        for c in json.loads(out_nb.read_text())['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])
    )
    assert "modality: 5 of 7 images 'unknown'" in outputs and 'MANIFEST.tsv' in outputs
    assert f"1 of 6 inputs rejected; every reject row: {out_dir / 'rejects.csv'}" in outputs
    inputs = pd.read_csv(out_dir / 'inputs.csv')
    assert _modalities(inputs)['scan_a.dcm'] == 'CT (header)'
