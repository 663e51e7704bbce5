"Curation under faults: every bad input is a reject row with a clear reason, or a clear error naming the folder."
import io, os, signal, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from PIL import Image

import biovfm.curate as C
import biovfm.readers as R


def run_curate(raw_dir, out_dir, **kwargs) -> dict:
    return C.curate(raw_dir=raw_dir, out_dir=out_dir, benchmarks=(), progress=False, **kwargs)


def reject_reasons(out_dir) -> dict:
    rejects = C.read_table(Path(out_dir)/'rejects.csv', 'rejects')
    return dict(zip(rejects.path, rejects.reason))


def curated_sources(out_dir) -> set:
    return set(pd.read_parquet(Path(out_dir)/'data_list.parquet').src)


def save_png(path:Path, size=(64, 48), seed:int=0) -> Path:
    "A random gray PNG of `size` (width, height)."
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def save_nifti(path:Path, data:np.ndarray, affine=None) -> Path:
    import nibabel as nib
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), np.eye(4) if affine is None else affine), str(path))
    return path


def save_nifti_with_nan_sform(path:Path) -> Path:
    "A NIfTI whose sform holds a NaN (nibabel refuses to write one, so the header is patched)."
    import nibabel as nib
    save_nifti(path, np.random.default_rng(0).random((16, 16, 16)))
    raw_bytes = path.read_bytes()
    header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw_bytes))
    header['srow_x'][0] = np.nan
    header['qform_code'] = 0
    header['sform_code'] = 1
    path.write_bytes(header.binaryblock + raw_bytes[348:])
    return path


# 1. NaN or inf in a NIfTI's geometry
def test_nifti_with_nan_geometry_is_rejected_with_its_reason(tmp_path):
    import nibabel as nib
    raw_dir = tmp_path/'raw'
    save_nifti_with_nan_sform(raw_dir/'mr'/'src'/'nan_affine.nii')
    image = nib.Nifti1Image(np.random.default_rng(1).random((16, 16, 16)).astype(np.float32), np.eye(4))
    image.header['pixdim'][1] = np.nan
    nib.save(image, str(raw_dir/'mr'/'src'/'nan_pixdim.nii.gz'))
    save_nifti(raw_dir/'mr'/'src'/'good.nii.gz', np.random.default_rng(2).random((16, 16, 16)) * 100)
    run_curate(raw_dir, tmp_path/'out')
    reasons = reject_reasons(tmp_path/'out')
    for name in ('nan_affine.nii', 'nan_pixdim.nii.gz'):
        assert 'invalid geometry: affine/spacing contains NaN or inf' in reasons.get(f'mr/src/{name}', ''), reasons
    assert curated_sources(tmp_path/'out') == {'mr/src/good.nii.gz'}


# 2. a 2-D NIfTI
def test_2d_nifti_is_curated_as_a_one_slice_volume(tmp_path):
    raw_dir = tmp_path/'raw'
    save_nifti(raw_dir/'mr'/'src'/'flat.nii.gz', np.random.default_rng(0).random((64, 48)) * 100)
    volume = R.read_nifti(raw_dir/'mr'/'src'/'flat.nii.gz')[0]
    assert volume.data.shape == (64, 48, 1) and len(volume.spacing) == 3
    run_curate(raw_dir, tmp_path/'out')
    data_list = pd.read_parquet(tmp_path/'out'/'data_list.parquet')
    assert data_list.view.tolist() == ['axial']
    reasons = reject_reasons(tmp_path/'out')
    for view in ('sagittal', 'coronal'):
        assert 'aspect ratio' in reasons[f'mr/src/flat.nii.gz#{view}']


# 3. an empty raw folder
def test_empty_raw_folder_is_a_clear_error_and_leaves_no_plan(tmp_path):
    raw_dir = tmp_path/'raw'
    (raw_dir/'xray').mkdir(parents=True)
    (raw_dir/'README.md').write_text('images go here\n')
    out_dir = tmp_path/'out'
    with pytest.raises(FileNotFoundError, match='no input files under') as error:
        run_curate(raw_dir, out_dir)
    assert str(raw_dir) in str(error.value)
    assert not (out_dir/'plan.parquet').exists()
    save_png(raw_dir/'xray'/'src'/'a.png')
    summary = run_curate(raw_dir, out_dir)
    assert summary['images'] == 1


def test_raw_folder_of_only_broken_files_gives_an_empty_corpus_and_its_rejects(tmp_path):
    raw_dir = tmp_path/'raw'
    (raw_dir/'xray'/'src').mkdir(parents=True)
    (raw_dir/'xray'/'src'/'empty.png').write_bytes(b'')
    summary = run_curate(raw_dir, tmp_path/'out')
    assert summary['images'] == 0
    assert 'cannot read image' in reject_reasons(tmp_path/'out')['xray/src/empty.png']


# 4. unbounded work: pixels, seconds, slides without tissue
def test_image_above_max_pixels_is_rejected_before_decoding(tmp_path, monkeypatch):
    import tifffile
    raw_dir = tmp_path/'raw'
    save_png(raw_dir/'xray'/'src'/'big.png', size=(200, 200))
    tifffile.imwrite(raw_dir/'xray'/'src'/'big.tif', np.zeros((200, 200), np.uint8))
    save_png(raw_dir/'xray'/'src'/'small.png', size=(90, 100))

    def decoding_is_not_allowed(self, *args, **kwargs):
        if self.size[0] * self.size[1] > 10_000: raise AssertionError(f'decoded a {self.size} image')
        return original_load(self, *args, **kwargs)
    from PIL import ImageFile
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, 'load', decoding_is_not_allowed)
    run_curate(raw_dir, tmp_path/'out', max_pixels=10_000)
    reasons = reject_reasons(tmp_path/'out')
    for name in ('big.png', 'big.tif'):
        assert 'exceeds max_pixels=10,000' in reasons.get(f'xray/src/{name}', ''), reasons
    assert curated_sources(tmp_path/'out') == {'xray/src/small.png'}
    assert C.Options().max_pixels > 50_000_000 and C.Options().max_seconds >= 600


def test_max_seconds_stops_a_slow_input_and_the_timer_is_disarmed(tmp_path, monkeypatch):
    raw_dir = tmp_path/'raw'
    save_png(raw_dir/'xray'/'src'/'slow.png')
    save_png(raw_dir/'xray'/'src'/'quick.png', seed=1)
    original_read_image = R.read_image

    def slow_read_image(path, *args, **kwargs):
        if Path(path).name == 'slow.png': time.sleep(30)
        return original_read_image(path, *args, **kwargs)
    monkeypatch.setattr(R, 'read_image', slow_read_image)
    handler_before = signal.getsignal(signal.SIGALRM)
    started = time.time()
    run_curate(raw_dir, tmp_path/'out', max_seconds=1)
    assert time.time() - started < 15
    assert 'took longer than 1 s' in reject_reasons(tmp_path/'out')['xray/src/slow.png']
    assert curated_sources(tmp_path/'out') == {'xray/src/quick.png'}
    inputs = pd.read_csv(tmp_path/'out'/'inputs.csv').set_index('job')
    assert inputs.at['xray/src/slow.png', 'status'] == 'timeout' and inputs.at['xray/src/slow.png', 'written'] == 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) == handler_before
    time.sleep(1.2)   # a disarmed timer interrupts nothing later


def test_an_input_stopped_by_max_seconds_leaves_no_images(tmp_path, monkeypatch):
    raw_dir = tmp_path/'raw'
    save_nifti(raw_dir/'mr'/'src'/'volume.nii.gz', np.random.default_rng(2).random((16, 16, 16)) * 100)
    original_process_item = C.process_item

    def process_item_then_hang(*args, **kwargs):
        original_process_item(*args, **kwargs)   # writes the volume's images
        time.sleep(30)
    monkeypatch.setattr(C, 'process_item', process_item_then_hang)
    summary = run_curate(raw_dir, tmp_path/'out', max_seconds=1)
    assert summary['images'] == 0 and summary['written'] == 0
    assert 'took longer than 1 s' in reject_reasons(tmp_path/'out')['mr/src/volume.nii.gz']
    assert list((tmp_path/'out').glob('images/**/*.png')) == []


def blank_slide(path:Path, side:int) -> Path:
    "An all-black (no tissue), non-tiled RGB TIFF of `side` px: read tile by tile as a slide above `wsi_min_side`."
    import tifffile
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.zeros((side, side, 3), np.uint8), compression='zlib')
    return path


def test_slide_without_tissue_is_a_reject_row(tmp_path):
    raw_dir = tmp_path/'raw'
    blank_slide(raw_dir/'histopathology'/'src'/'blank.tif', 500)
    save_png(raw_dir/'xray'/'src'/'a.png')
    summary = run_curate(raw_dir, tmp_path/'out', wsi_min_side=400)
    reason = reject_reasons(tmp_path/'out')['histopathology/src/blank.tif']
    assert reason.startswith('no tissue in any of 4 tiles'), reason
    assert summary['background_tiles'] == 4


def test_max_seconds_works_in_pool_workers(tmp_path):
    "A genuinely slow input (hundreds of tiles decoded from strips) in a spawned worker process."
    raw_dir = tmp_path/'raw'
    blank_slide(raw_dir/'histopathology'/'src'/'slow.tif', 4000)
    save_png(raw_dir/'xray'/'src'/'a.png')
    run_curate(raw_dir, tmp_path/'out', workers=2, chunk_jobs=1, wsi_min_side=1000, max_seconds=1)
    reasons = reject_reasons(tmp_path/'out')
    assert 'took longer than 1 s' in reasons['histopathology/src/slow.tif'], reasons
    assert curated_sources(tmp_path/'out') == {'xray/src/a.png'}
    inputs = pd.read_csv(tmp_path/'out'/'inputs.csv').set_index('job')
    assert inputs.at['histopathology/src/slow.tif', 'seconds'] < 5   # stopped after 1 s, not read to its end


# 5. symlinks: dangling, loops, pointing outside the raw folder
def test_broken_and_external_symlinks_are_reject_rows(tmp_path):
    raw_dir = tmp_path/'raw'
    folder = raw_dir/'xray'/'src'
    save_png(folder/'real.png')
    outside = save_png(tmp_path/'elsewhere'/'outside.png', seed=1)
    os.symlink('missing.png', folder/'dangling.png')
    os.symlink('loop.png', folder/'loop.png')
    os.symlink('ping.png', folder/'pong.png')
    os.symlink('pong.png', folder/'ping.png')
    os.symlink(outside, folder/'external.png')
    os.symlink(outside.parent, folder/'external_folder')
    os.symlink('real.png', folder/'alias.png')
    os.symlink(raw_dir/'xray', folder/'inner_folder')
    os.mkfifo(folder/'pipe.png')
    run_curate(raw_dir, tmp_path/'out')
    reasons = reject_reasons(tmp_path/'out')
    assert reasons['xray/src/dangling.png'] == 'dangling symlink -> missing.png'
    for name in ('loop.png', 'ping.png', 'pong.png'):
        assert reasons[f'xray/src/{name}'] == 'symlink loop'
    for name in ('external.png', 'external_folder'):
        assert reasons[f'xray/src/{name}'].startswith('symlink points outside the raw folder'), reasons
    assert reasons['xray/src/pipe.png'].startswith('not a regular file')
    assert reasons['xray/src/inner_folder'].startswith('symlink to a folder inside the raw folder: not followed')
    inputs = pd.read_csv(tmp_path/'out'/'inputs.csv').set_index('job')
    assert inputs.at['xray/src/dangling.png', 'status'] == 'rejected'
    assert inputs.at['xray/src/alias.png', 'status'] == 'ok'   # a link inside the raw folder is an input
    assert curated_sources(tmp_path/'out') == {'xray/src/alias.png'}   # real.png: its exact duplicate
    run_curate(raw_dir, tmp_path/'followed', follow_external_links=True)
    followed = pd.read_csv(tmp_path/'followed'/'inputs.csv').set_index('job')
    for job in ('xray/src/external.png', 'xray/src/external_folder/outside.png'):   # one is the other's exact duplicate
        assert followed.at[job, 'status'] == 'ok' and followed.at[job, 'written'] == 1


# 6. files added, removed or changed after a run
def test_files_added_after_a_finished_run_are_curated_and_finished_chunks_kept(tmp_path, capsys):
    raw_dir = tmp_path/'raw'
    for index in range(3): save_png(raw_dir/'xray'/'src'/f'{index}.png', seed=index)
    out_dir = tmp_path/'out'
    run_curate(raw_dir, out_dir, chunk_jobs=1)
    finished = {marker: marker.stat().st_mtime_ns for marker in out_dir.glob('shards/*/*/.done')}
    assert len(finished) == 3
    save_png(raw_dir/'xray'/'src'/'3.png', seed=3)
    summary = run_curate(raw_dir, out_dir, chunk_jobs=1)
    assert 'xray/src/3.png' in curated_sources(out_dir) and summary['images'] == 4
    assert all(marker.stat().st_mtime_ns == mtime for marker, mtime in finished.items()), 'a finished chunk was redone'
    assert '1 added' in capsys.readouterr().out


def test_removed_and_changed_files_are_redone_on_reuse(tmp_path):
    raw_dir = tmp_path/'raw'
    for index in range(3): save_png(raw_dir/'xray'/'src'/f'{index}.png', seed=index)
    out_dir = tmp_path/'out'
    run_curate(raw_dir, out_dir, chunk_jobs=1)
    before = pd.read_parquet(out_dir/'data_list.parquet').set_index('src')
    (raw_dir/'xray'/'src'/'0.png').unlink()
    save_png(raw_dir/'xray'/'src'/'1.png', size=(30, 40), seed=9)
    run_curate(raw_dir, out_dir, chunk_jobs=1)
    after = pd.read_parquet(out_dir/'data_list.parquet').set_index('src')
    assert set(after.index) == {'xray/src/1.png', 'xray/src/2.png'}
    assert after.at['xray/src/1.png', 'content_hash'] != before.at['xray/src/1.png', 'content_hash']
    assert after.at['xray/src/2.png', 'content_hash'] == before.at['xray/src/2.png', 'content_hash']
