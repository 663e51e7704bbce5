"""Readers against independent implementations: the DICOM series geometry against SimpleITK, slides through
openslide / tiffslide / wsidicom tile by tile (real embedded slides and a generated pyramidal TIFF), MIRAX folders."""
from pathlib import Path
import numpy as np
import pytest

from biovfm.core import repo_root
from biovfm import curate as C, readers as R

RAW = repo_root()/'data'/'raw'


def test_dicom_series_geometry_matches_simpleitk():
    sitk = pytest.importorskip('SimpleITK')
    import nibabel as nib
    files = sorted((RAW/'mr_dicom_series').rglob('*.dcm'))
    volume = R.read_dicom_series(files)[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(files[0].parent)))
    image = reader.Execute()
    voxels = sitk.GetArrayFromImage(image).astype(np.float32).transpose(2, 1, 0)   # (z, y, x) -> (x, y, z)
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    affine[:3, 3] = image.GetOrigin()
    affine = np.diag([-1, -1, 1, 1]) @ affine   # SimpleITK's LPS -> RAS
    canonical = nib.as_closest_canonical(nib.Nifti1Image(voxels, affine))
    assert volume.data.shape == canonical.shape == (512, 512, 10)
    np.testing.assert_allclose(volume.spacing, canonical.header.get_zooms()[:3], rtol=1e-6)
    assert volume.meta['axcodes'] == ''.join(nib.aff2axcodes(canonical.affine)) == 'RAS'
    np.testing.assert_array_equal(volume.data, np.asarray(canonical.dataobj))


def pyramidal_tiff(path:Path, height:int=1000, width:int=1300) -> np.ndarray:
    "A tiled, two-level RGB TIFF with a tissue-like pink texture on glass-white background; returns level 0."
    import tifffile
    rng = np.random.default_rng(0)
    image = np.full((height, width, 3), 240, np.uint8)
    image[100:900, 200:1100] = rng.integers(0, 60, (800, 900, 3)) + np.array([170, 90, 150], np.uint8)
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(256, 256), photometric='rgb', subifds=1, resolution=(1e4/0.5, 1e4/0.5),
                  resolutionunit='CENTIMETER', compression='zlib')
        tif.write(image[::2, ::2], tile=(256, 256), photometric='rgb', subfiletype=1, compression='zlib')
    return image


@pytest.mark.parametrize('library', ['openslide', 'tiffslide'])
def test_generated_pyramidal_tiff_is_read_tile_by_tile(tmp_path, library):
    image = pyramidal_tiff(tmp_path/'slide.tif')
    tiles = list(R.read_wsi(tmp_path/'slide.tif', tile=224, library=library))
    assert len(tiles) == (1000 // 224) * (1300 // 224)
    for t in tiles:
        y, x = t.meta['y'], t.meta['x']
        np.testing.assert_array_equal(t.data, image[y:y+224, x:x+224])
    assert tiles[0].meta['background'] and not tiles[7].meta['background']   # glass corner vs textured centre
    assert tiles[0].meta['slide_library'] == library


def test_curation_of_a_slide_uses_openslide_and_lists_background(tmp_path):
    raw = tmp_path/'raw'/'histopathology'/'generated'
    raw.mkdir(parents=True)
    pyramidal_tiff(raw/'slide.svs')   # a generic tiled TIFF under a vendor suffix: opened by openslide
    summary = C.curate(raw_dir=tmp_path/'raw', out_dir=tmp_path/'out', progress=False, workers=1)
    assert summary['images'] > 0 and summary['background_tiles'] > 0
    inputs = C.read_table(tmp_path/'out'/'inputs.csv')
    assert list(inputs.status) == ['ok']
    corpus = C.read_table(tmp_path/'out'/'data_list.parquet')
    assert (corpus.view == 'tile').all() and len(corpus) == summary['images']


def test_mirax_data_files_are_skipped_and_a_broken_slide_is_a_reject(tmp_path):
    raw = tmp_path/'raw'/'histopathology'/'scanner'
    (raw/'slide').mkdir(parents=True)
    (raw/'slide.mrxs').write_bytes(b'not a slide')
    (raw/'slide'/'Slidedat.ini').write_text('[GENERAL]\n')
    (raw/'slide'/'Data0000.dat').write_bytes(b'\0' * 64)
    assert R.file_kind(raw/'slide.mrxs') == 'wsi'
    assert R.file_kind(raw/'slide'/'Data0000.dat') == R.file_kind(raw/'slide'/'Slidedat.ini') == 'skip'
    with pytest.raises(R.RejectError, match=r'cannot open slide \(openslide: .*; tiffslide: '):
        list(R.read_wsi(raw/'slide.mrxs'))
    summary = C.curate(raw_dir=tmp_path/'raw', out_dir=tmp_path/'out', progress=False, workers=1)
    rejects = C.read_table(tmp_path/'out'/'rejects.csv')
    assert summary['images'] == 0 and list(rejects.path) == ['histopathology/scanner/slide.mrxs']


def test_dicom_wsi_is_read_frame_by_frame_with_wsidicom():
    import pydicom
    wsi = RAW/'histopathology'/'niivue-demo-images'/'cptac-brca_911f6cbd.dcm'
    frames = pydicom.dcmread(wsi).pixel_array   # 49 frames of 240 x 240, TILED_FULL (7 x 7)
    tiles = R.read_dicom(wsi)
    assert not isinstance(tiles, list)   # a generator: nothing decoded before the first tile is asked for
    tiles = list(tiles)
    assert len(tiles) == (1547 // 224) * (1680 // 224) and {t.meta['slide_library'] for t in tiles} == {'wsidicom'}
    assembled = np.zeros((7 * 240, 7 * 240, 3), np.int16)
    for i, frame in enumerate(frames): assembled[(i // 7)*240:(i // 7 + 1)*240, (i % 7)*240:(i % 7 + 1)*240] = frame
    for t in tiles:
        y, x = t.meta['y'], t.meta['x']
        assert np.abs(t.data.astype(np.int16) - assembled[y:y+224, x:x+224]).max() <= 2   # JPEG decoders differ by 1-2


def test_a_reader_registered_in_its_own_file_is_used_by_spawned_workers(tmp_path, monkeypatch):
    "tests/toy_reader.py registers `.npy` arrays; `reader_modules` imports it in the planner and in each worker."
    import json, os, sys
    from PIL import Image
    from biovfm.curate import curate
    from biovfm.readers import READERS
    monkeypatch.syspath_prepend(str(Path(__file__).parent))   # spawned workers inherit sys.path
    monkeypatch.delitem(sys.modules, 'toy_reader', raising=False)
    raw = tmp_path/'raw'/'xray'/'arrays'
    raw.mkdir(parents=True)
    chest = np.asarray(Image.open(sorted(RAW.rglob('*.png'))[0]).convert('L'))
    np.save(raw/'chest.npy', chest)
    np.save(raw/'flipped.npy', chest[::-1, ::-1].copy() // 2)
    np.save(raw/'cube.npy', np.zeros((4, 4, 4), np.uint8))
    Image.fromarray(chest).save(raw/'chest.png')
    without = curate(raw_dir=tmp_path/'raw', out_dir=tmp_path/'plain', benchmarks=(), progress=False,
                     images_per_tar=0)
    assert without['inputs'] == 1   # .npy files are skipped while no reader claims them
    try:
        summary = curate(raw_dir=tmp_path/'raw', out_dir=tmp_path/'out', benchmarks=(), progress=False,
                         workers=2, chunk_jobs=1, images_per_tar=0, reader_modules='toy_reader')
    finally:   # the registration must not leak into other tests
        READERS.pop('npy', None)
        sys.modules.pop('toy_reader', None)
    inputs = C.read_table(tmp_path/'out'/'inputs.csv').set_index('job')
    assert inputs.kind.to_dict() == {'xray/arrays/chest.npy': 'npy', 'xray/arrays/chest.png': 'image',
                                     'xray/arrays/cube.npy': 'npy', 'xray/arrays/flipped.npy': 'npy'}
    rejects = C.read_table(tmp_path/'out'/'rejects.csv')
    assert 'a 2-D array is needed' in dict(zip(rejects.path, rejects.reason))['xray/arrays/cube.npy']
    corpus = C.read_table(tmp_path/'out'/'data_list.parquet')
    assert 'xray/arrays/flipped.npy' in set(corpus.src) and summary['images'] >= 2
    worker_pids = {json.loads(done.read_text())['pid'] for done in (tmp_path/'out').rglob('.done')}
    assert worker_pids - {os.getpid()}   # a spawned worker read some (this process works too)
    with pytest.raises(ImportError, match="cannot import 'no_such_module'"):
        curate(raw_dir=tmp_path/'raw', out_dir=tmp_path/'bad', benchmarks=(), progress=False,
               reader_modules='no_such_module')
