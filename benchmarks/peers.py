"""Peers of biovfm's pretraining: DINOv2 and MAE training steps assembled from lightly's own modules the way
lightly's examples assemble them (`examples/pytorch/dinov2.py`: DINOLoss + IBOTPatchLoss + KoLeoLoss,
MaskedVisionTransformerTIMM, EMA teacher; `examples/pytorch/mae.py`), at sizes given here, with lightly's
own crops (`DINOTransform`, `MAETransform`).

    peer = dinov2_peer('vit_tiny', img_size=64, patch_size=8, batch_size=32)
    loss = peer.step(views)   # views: lightly's batch[0], a list of crop tensors (2 global, then n_local local)
    train_peer('dinov2', data_list, 'runs/peer_dinov2', steps=300)  # a backbone folder the probe evaluates

Deviations from the examples, all parameters: the backbone is any timm ViT at `img_size`/`patch_size`
(the examples: ViT-S/16, ViT-B/32 at 224 px); the example's DINOv2 backbone has LayerScale 1e-5 and
student drop path 0.1 and its heads 2,048/256/65,536, here `layerscale`, `drop_path` and the head sizes default
to biovfm's `small` preset so that both steps run the same backbone and heads; the schedules (teacher
temperature, momentum, weight decay) are the example's, over `total_steps`.
"""
from __future__ import annotations
import copy, json, math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
import torch
import torch.nn as nn


@dataclass
class Peer:
    "A lightly training setup: the model, its backbone (what is saved and probed), lightly's crops, one step."

    method: str
    model: nn.Module
    backbone: nn.Module  # the plain timm ViT that is evaluated (DINOv2: the teacher's, as DINOv2 evaluates)
    transform: Callable  # lightly's transform: PIL image -> list of crop tensors
    step: Callable  # step(views, step_index=0) -> loss value: forward, backward, AdamW, (EMA)
    model_kwargs: dict = field(default_factory=dict)  # what rebuilds the backbone with timm


def _vit(arch: str, img_size: int, patch_size: int, layerscale: float | None, drop_path: float = 0.0):
    "A timm ViT and the kwargs that rebuild it."
    import timm
    from biovfm.core import timm_name

    kw = dict(patch_size=patch_size) | (dict(init_values=layerscale) if layerscale else {})
    vit = timm.create_model(timm_name(arch), pretrained=False, num_classes=0, img_size=img_size,
                            dynamic_img_size=True, drop_path_rate=drop_path, **kw)
    return vit, kw


def dinov2_peer(arch: str = 'vit_tiny', img_size: int = 64, patch_size: int = 8, batch_size: int = 32,
                n_prototypes: int = 1024, head_hidden: int = 512, head_bottleneck: int = 128, n_local: int = 4,
                local_size: int = 32, layerscale: float | None = None, drop_path: float = 0.0,
                lr: float = 0.001, total_steps: int = 1000, seed: int = 0) -> Peer:
    "DINOv2 as lightly's `examples/pytorch/dinov2.py` assembles it, at these sizes."
    from functools import partial
    from lightly.loss import DINOLoss, IBOTPatchLoss, KoLeoLoss
    from lightly.models.modules import DINOv2ProjectionHead, MaskedVisionTransformerTIMM
    from lightly.models.utils import random_block_mask, update_drop_path_rate, update_momentum
    from lightly.transforms.dino_transform import DINOTransform
    from lightly.utils.scheduler import cosine_schedule, linear_warmup_schedule

    torch.manual_seed(seed)
    vit, kw = _vit(arch, img_size, patch_size, layerscale)
    model = nn.Module()
    model.teacher_backbone = MaskedVisionTransformerTIMM(vit=vit, antialias=False, pos_embed_initialization='skip')
    model.student_backbone = copy.deepcopy(model.teacher_backbone)
    if drop_path:
        update_drop_path_rate(model.student_backbone.vit, drop_path_rate=drop_path, mode='uniform')
    head = partial(DINOv2ProjectionHead, input_dim=vit.embed_dim, hidden_dim=head_hidden,
                   bottleneck_dim=head_bottleneck, output_dim=n_prototypes)
    model.teacher_head, model.student_head = head(), head()  # the iBOT head is the DINO head (shared)
    for frozen in (model.teacher_backbone, model.teacher_head):
        frozen.requires_grad_(False).eval()
    dino_criterion, ibot_criterion = DINOLoss(output_dim=n_prototypes), IBOTPatchLoss(output_dim=n_prototypes)
    koleo_criterion = KoLeoLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    transform = DINOTransform(global_crop_size=img_size, global_crop_scale=(0.32, 1), local_crop_size=local_size,
                              local_crop_scale=(0.05, 0.32), n_local_views=n_local)

    def step(views: list, step_index: int = 0) -> float:
        global_views, local_views = torch.cat(views[:2]), torch.cat(views[2:])
        B = len(global_views)
        H, W = model.teacher_backbone.vit.patch_embed.grid_size
        mask = global_views.new_zeros((B, H * W + 1), dtype=torch.bool)
        block_mask = random_block_mask(size=(B, H, W), device=mask.device)
        mask[:, 1:] = block_mask.flatten(start_dim=1)
        with torch.no_grad():
            teacher_features = model.teacher_backbone.encode(global_views)
            teacher_cls_out = model.teacher_head(teacher_features[:, 0])
            teacher_masked_out = model.teacher_head(teacher_features[mask])
        student_features = model.student_backbone.encode(global_views, mask=mask)
        student_global_cls_token = student_features[:, 0]
        student_global_cls_out = model.student_head(student_global_cls_token)
        student_global_masked_out = model.student_head(student_features[mask])
        student_local_cls_out = model.student_head(model.student_backbone.encode(local_views)[:, 0])
        student_cls_out = torch.cat([student_global_cls_out, student_local_cls_out])
        teacher_temp = linear_warmup_schedule(step=step_index, warmup_steps=int(30 / 50 * total_steps),
                                              start_value=0.04, end_value=0.07)
        dino_loss = dino_criterion(teacher_out=teacher_cls_out.chunk(2),
                                   student_out=student_cls_out.chunk(len(views)), teacher_temp=teacher_temp)
        ibot_loss = ibot_criterion(teacher_out=teacher_masked_out, student_out=student_global_masked_out,
                                   mask=block_mask, teacher_temp=teacher_temp)
        koleo_loss = 0.1 * sum(koleo_criterion(t) for t in student_global_cls_token.chunk(2))
        loss = dino_loss + ibot_loss + koleo_loss
        loss.backward()
        weight_decay = cosine_schedule(step=step_index, max_steps=total_steps, start_value=0.04, end_value=0.4)
        for group in optimizer.param_groups:
            if group['weight_decay'] != 0.0:
                group['weight_decay'] = weight_decay
        optimizer.step()
        optimizer.zero_grad()
        momentum = cosine_schedule(step=step_index, max_steps=total_steps, start_value=0.992, end_value=1.0)
        update_momentum(model.student_backbone, model.teacher_backbone, m=momentum)
        update_momentum(model.student_head, model.teacher_head, m=momentum)
        return float(loss.detach())

    return Peer('dinov2', model, model.teacher_backbone.vit, transform, step, kw)


def mae_peer(arch: str = 'vit_tiny', img_size: int = 64, patch_size: int = 8, batch_size: int = 32,
             decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4, mask_ratio: float = 0.75,
             lr: float = 1.5e-4, total_steps: int = 1000, seed: int = 0) -> Peer:
    "MAE as lightly's `examples/pytorch/mae.py` assembles it (decoder sizes: biovfm's `small` preset by default)."
    from lightly.models import utils
    from lightly.models.modules import MaskedVisionTransformerDecoderTIMM, MaskedVisionTransformerTIMM
    from lightly.models.modules.masked_vision_transformer_timm import init_weights
    from lightly.transforms import MAETransform

    torch.manual_seed(seed)
    vit, kw = _vit(arch, img_size, patch_size, None)
    model = nn.Module()
    model.backbone = MaskedVisionTransformerTIMM(vit=vit)
    sequence_length = model.backbone.sequence_length
    model.decoder_embed = nn.Linear(vit.embed_dim, decoder_dim)
    model.decoder = MaskedVisionTransformerDecoderTIMM(
        num_patches=vit.patch_embed.num_patches, embed_dim=decoder_dim, depth=decoder_depth,
        num_heads=decoder_heads, num_prefix_tokens=vit.num_prefix_tokens, mlp_ratio=4.0, proj_drop_rate=0.0,
        attn_drop_rate=0.0)
    model.prediction_head = nn.Linear(decoder_dim, patch_size**2 * 3)
    model.decoder_embed.apply(init_weights)
    model.prediction_head.apply(init_weights)
    criterion = nn.MSELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)

    def step(views: list, step_index: int = 0) -> float:
        images = views[0]
        idx_keep, idx_mask = utils.random_token_mask(size=(len(images), sequence_length), mask_ratio=mask_ratio,
                                                     device=images.device)
        x_encoded = model.backbone.encode(images=images, idx_keep=idx_keep)
        x_decode = model.decoder_embed(x_encoded)
        x_masked = x_decode.new_zeros(len(images), sequence_length, x_decode.shape[-1])
        x_masked = utils.set_at_index(x_masked, idx_keep, x_decode.type_as(x_masked))
        x_decoded = model.decoder(x_masked, idx_mask=idx_mask)
        predictions = model.prediction_head(utils.get_at_index(x_decoded, idx_mask))
        targets = utils.get_at_index(utils.patchify(images, patch_size), idx_mask - 1)
        loss = criterion(predictions, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return float(loss.detach())

    return Peer('mae', model, vit, MAETransform(input_size=img_size), step, kw)


PEERS = dict(dinov2=dinov2_peer, mae=mae_peer)


def make_peer(method: str, **sizes) -> Peer:
    "The lightly peer of `method` ('dinov2' or 'mae') at `sizes` (the keyword arguments of its builder)."
    if method not in PEERS:
        raise ValueError(f"no lightly peer for method={method!r}; choose from {', '.join(PEERS)}")
    return PEERS[method](**sizes)


def train_peer(method: str, data_list, out_dir, steps: int, batch_size: int = 32, arch: str = 'vit_tiny',
               img_size: int = 64, patch_size: int = 8, num_workers: int = 0, seed: int = 0, **sizes) -> Path:
    "Train the lightly peer of `method` for `steps` steps over a biovfm data list; its backbone saved in `out_dir`."
    from biovfm.backbones import save_backbone
    from biovfm.core import timm_name
    from biovfm.data import PretrainDataset

    peer = make_peer(method, arch=arch, img_size=img_size, patch_size=patch_size, batch_size=batch_size,
                     total_steps=steps, seed=seed, **sizes)
    dataset = PretrainDataset(data_list, transform=peer.transform, seed=seed)
    if len(dataset) < batch_size:
        raise ValueError(f"{data_list}: {len(dataset)} training images, fewer than batch_size={batch_size}")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True,
                                         num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    losses, step_index = [], 0
    while step_index < steps:
        for views, _keys in loader:
            losses.append(peer.step(views, step_index))
            step_index += 1
            if step_index == steps:
                break
    if not all(math.isfinite(loss) for loss in losses):
        raise FloatingPointError(f"lightly {method} peer: non-finite loss in {losses}")
    (out_dir / 'log.csv').write_text('step,loss\n' + ''.join(f'{i},{l}\n' for i, l in enumerate(losses)))
    return save_backbone(peer.backbone, out_dir, timm_name(arch), img_size, method=f'lightly-{method}',
                         model_kwargs=peer.model_kwargs, steps=steps, batch_size=batch_size,
                         data_list=str(data_list), peer_sizes=json.dumps(sizes))
