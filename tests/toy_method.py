"""A third self-supervised method in its own file: rotation prediction (RotNet, Gidaris et al. 2018).

It exists to show (and test) that a method is one new file and one `register_method` call: nothing in
biovfm is edited. The class token of a timm ViT predicts by how many quarter turns each image was rotated.
"""
from dataclasses import dataclass
import torch
import torch.nn as nn
import torch.nn.functional as F
from functools import partial
from biovfm.mae import mae_transform
from biovfm.pretrain import SSLMethod, register_method, make_vit, preset_steps, vit_forward_flops


@dataclass
class RotNetOptions:
    "RotNet's own knobs: `cfg.options` of its runs (`make_config(rotations=2)` or `method_options={'rotations': 2}`)."
    rotations: int = 4  # quarter-turn classes the head tells apart: 2 (0 or 180 degrees) or 4


class RotNetModel(nn.Module):
    "A timm ViT (`backbone.vit`, as the training loop expects) and a linear head over the quarter turns."
    def __init__(self, cfg):
        super().__init__()
        vit, self.model_kwargs = make_vit(cfg)
        self.backbone = nn.Module()
        self.backbone.vit = vit
        self.head = nn.Linear(vit.embed_dim, cfg.options.rotations)

    def forward(self, images):
        cls = self.backbone.vit.forward_features(images)[:, 0]
        return cls, self.head(cls)


class RotateCollate:
    "Rotate image `key` by `key % rotations` quarter turns: the label is known without annotation."
    def __init__(self, rotations:int): self.rotations = rotations

    def __call__(self, batch):
        images, keys = zip(*batch)
        turns = torch.tensor(keys) % self.rotations
        rotated = torch.stack([torch.rot90(image, int(turn), dims=(1, 2)) for image, turn in zip(images, turns)])
        return dict(images=rotated, turns=turns, keys=torch.tensor(keys))


class RotNet(SSLMethod):
    name, options = 'rotnet', RotNetOptions

    def preset(self, preset, arch, img_size, batch_size, max_steps, patch_size) -> dict:
        steps = partial(preset_steps, max_steps=max_steps)
        return dict(lr=1e-3*batch_size/256, min_lr=0.0, warmup_steps=steps(0.1, 10**9), weight_decay=0.05,
                    weight_decay_end=0.05, betas=[0.9, 0.999], layer_decay=1.0, patch_embed_lr_mult=1.0, clip_grad=1.0,
                    drop_path=0.0, layerscale=None)

    def validate(self, cfg):
        if cfg.options.rotations not in (2, 4):
            raise ValueError(f"rotnet: rotations={cfg.options.rotations!r}: use 2 or 4")

    def build(self, cfg): return RotNetModel(cfg)

    def views(self, cfg):
        return mae_transform(cfg.img_size, (0.5, 1.0)), RotateCollate(cfg.options.rotations)

    def forward_loss(self, model, teacher, criterion, batch, cfg, schedule, device, amp) -> dict:
        with amp: cls, logits = model(batch['images'].to(device))
        loss = F.cross_entropy(logits.float(), batch['turns'].to(device))
        return dict(loss=loss, rotation_loss=loss.detach(), cls=cls)

    def flops_per_image(self, dims, img_size, grad_ckpt=False, **other_knobs) -> float:
        return 3*vit_forward_flops(dims, (img_size//dims['patch'])**2 + 1)


register_method(RotNet())
