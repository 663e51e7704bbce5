"""The method registry: a toy third method (tests/toy_method.py, its own file) pretrains 2 steps through the
shared loop, exports a backbone and gets a GPU-hour estimate, with no edit anywhere in biovfm."""
import pandas as pd
import pytest
import torch
from biovfm.backbones import load_backbone
from biovfm.data import example_data_list
from biovfm import pretrain as P
from biovfm.experiments import train_flops_per_image, gpu_hours


def test_unknown_method_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"method='simclr': unknown; registered methods are \['dinov2', 'mae'"):
        P.make_config(method='simclr')
    with pytest.raises(TypeError, match='expected an SSLMethod instance'):
        P.register_method(P.SSLMethod)


def test_a_method_whose_options_are_not_declared_is_refused_by_name():
    "A plug-in written before methods declared their options: its preset's keys are refused, naming the way out."
    import toy_method

    class OldRotNet(toy_method.RotNet):
        name, options = 'old_rotnet', None

        def preset(self, *args):
            return super().preset(*args) | dict(method_options={'rotations': 4})

    P.register_method(OldRotNet())
    try:
        with pytest.raises(ValueError, match=r"old_rotnet.preset returned 'method_options', .*declare them as SSLMethod.options"):
            P.make_config(method='old_rotnet', img_size=32)
    finally:
        P.METHODS.pop('old_rotnet')

    class BadOptions(toy_method.RotNet):
        name, options = 'bad_options', dict(rotations=4)

    with pytest.raises(TypeError, match=r"bad_options.options must be a dataclass or None"):
        P.register_method(BadOptions())
    assert 'bad_options' not in P.METHODS


def test_a_toy_method_in_its_own_file_pretrains(tmp_path):
    import toy_method   # registers 'rotnet'
    data_list = example_data_list(tmp_path/'data', n=24, size=32)
    cfg = P.make_config(method='rotnet', data_list=data_list, out_dir=tmp_path/'run', img_size=32, patch_size=8,
                        max_steps=2, batch_size=8, save_every=10)
    assert cfg.options == toy_method.RotNetOptions(rotations=4) and cfg.lr == pytest.approx(1e-3*8/256)
    run_dir = P.train(cfg, progress=False)
    log = pd.read_csv(run_dir/'log.csv')
    assert log.step.tolist() == [0, 1]
    assert log.rotation_loss.notna().all() and log.emb_std.notna().all()
    backbone, info = load_backbone(run_dir)
    assert info['method'] == 'rotnet' and backbone(torch.zeros(1, 3, 32, 32)).shape == (1, 192)
    record = P.load_checkpoint(run_dir/P.CKPT)['config']
    assert record['method_options'] == {'rotations': 4} and P.config_from_record(record) == cfg
    assert train_flops_per_image('rotnet', 'vit_tiny') > 0
    assert gpu_hours(dict(method='rotnet', arch='vit_tiny_patch16_224', max_steps=1000, batch_size=256)) > 0
    with pytest.raises(ValueError, match=r"rotnet: rotations=3: use 2 or 4"):
        P.make_config(method='rotnet', method_options={'rotations': 3}, img_size=32)   # the plug-in's way in
    assert P.make_config(method='rotnet', rotations=2, img_size=32).options.rotations == 2   # or flat, in Python
    with pytest.raises(ValueError, match=r"not an option of method='mae': rotations=2 \(an option of rotnet\); mae's options: mask_ratio"):
        P.make_config(method='mae', method_options={'rotations': 2})


def test_a_method_given_as_module_and_class_reaches_torchrun_workers(tmp_path, monkeypatch):
    "`method='toy_method:RotNet'`: each torchrun worker imports the method's file itself (nothing registered by hand)."
    import os
    from pathlib import Path
    tests_dir = str(Path(__file__).parent)
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join(filter(None, [tests_dir, os.environ.get('PYTHONPATH')])))
    data_list = example_data_list(tmp_path/'data', n=24, size=32)
    run_dir = P.run(method='toy_method:RotNet', data_list=str(data_list), out_dir=str(tmp_path/'run'), img_size=32,
                    patch_size=8, max_steps=2, batch_size=8, nproc=2, save_every=10)
    log = pd.read_csv(run_dir/'log.csv')
    assert log.step.tolist() == [0, 1] and log.rotation_loss.notna().all()
    assert load_backbone(run_dir)[1]['method'] == 'toy_method:RotNet'
    with pytest.raises(ValueError, match="cannot load NoSuchClass from toy_method"):
        P.make_config(method='toy_method:NoSuchClass')
