"""Train the tiny checkpoint's video VAE to reconstruct natural images; write ltx2/engine/tiny_vae.safetensors.

    .venv/bin/python scripts/train_tiny_vae.py [--crops 192] [--out PATH]

The modules are ltx-core's own VideoEncoder/VideoDecoder built from `tiny.VAE_CONFIG`. Gradient descent from a
random start was tried first and does not get past ~13 dB in the minutes a shared 2-core machine allows (the
encoder and decoder are linear chains between pixel norms, and they train slowly). So the layers are split:
`route` hand-sets the paths that carry, per 32x32 block, luma at 4-pixel cells and colour at 8-pixel cells
through ltx-core's space-to-depth layouts, and `fit` solves the two output layers (the encoder's conv_out, the
decoder's 3x3 conv_out, which learns to interpolate) by least squares on 128x128 crops (~20 s).

Training sees still images only (one frame, where every temporal tap of a 3-D kernel sees the same frame), so
each kernel is fitted through the sum of its taps with a plain 2-D convolution, and the file holds those sums;
`tiny.place_still_kernels` puts them on their taps when the checkpoint is built (see there).

Data: scikit-image's sample pictures (the astronaut held out for evaluation) at full and half size, plus
generated pictures (soft gradients and overlapping ellipses). Fixed seeds and one thread give the same file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ltx_core.model.video_vae import convolution
from ltx_core.model.video_vae.model_configurator import VideoDecoderConfigurator, VideoEncoderConfigurator

from ltx2.engine import tiny

OUT = Path(tiny.__file__).with_name("tiny_vae.safetensors")
TRAIN_IMAGES = (
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
    "gravel",
    "page",
    "horse",
    "cell",
    "clock",
    "colorwheel",
    "logo",
    "text",
)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).astype(np.uint8) if image.max() <= 1.0 else image.astype(np.uint8)
    return image


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HWC -> float CHW in [-1, 1], the range the pipelines feed the encoder."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0


def _half(t: torch.Tensor) -> torch.Tensor:
    return F.interpolate(t[None], scale_factor=0.5, mode="area")[0]


def sample_images() -> list[torch.Tensor]:
    import skimage.data

    out = []
    for name in TRAIN_IMAGES:
        image = _to_tensor(_rgb(getattr(skimage.data, name)()))
        out.append(image)
        if min(image.shape[1:]) >= 256:
            out.append(_half(image))
    return out


def held_out_crops() -> torch.Tensor:
    """The astronaut as 128x128 crops: 16 tiles at full size, 4 at half size and the whole picture at 128."""
    import skimage.data

    image = _to_tensor(_rgb(skimage.data.astronaut()))
    crops = []
    for img in (image, _half(image), _half(_half(image))):
        side = img.shape[1] // 128
        crops += [img[:, y * 128 : (y + 1) * 128, x * 128 : (x + 1) * 128] for y in range(side) for x in range(side)]
    return torch.stack(crops)


def generated_image(rng: np.random.Generator, size: int) -> torch.Tensor:
    """A soft gradient with a few overlapping ellipses of random colour: edges, flat areas and shading."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b, c = rng.uniform(-1, 1, (3, 3, 1, 1))
    image = a * xx + b * yy + c * 0.5
    for _ in range(rng.integers(1, 6)):
        cy, cx = rng.uniform(0, 1, 2)
        ry, rx = rng.uniform(0.05, 0.5, 2)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        soft = 1.0 / (1.0 + np.exp(np.minimum((inside - 1.0) * rng.uniform(5, 60), 50.0)))
        image = image * (1 - soft) + rng.uniform(-1, 1, (3, 1, 1)) * soft
    return torch.from_numpy(np.clip(image, -1, 1).astype(np.float32))


def _still_forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """CausalConv3d on a still clip (all frames equal): a 2-D convolution with the kernel's taps summed."""
    conv = self.conv
    weight = conv.weight.sum(2)
    frame = x[:, :, 0]
    if conv.padding_mode == "zeros":
        y = F.conv2d(frame, weight, conv.bias, padding=1)
    else:
        y = F.conv2d(F.pad(frame, (1, 1, 1, 1), mode=conv.padding_mode), weight, conv.bias)
    return y.unsqueeze(2).expand(-1, -1, x.shape[2], -1, -1)


class StillTraining:
    """Patch ltx-core's CausalConv3d to its still-image form for the duration of training."""

    def __enter__(self):
        self.saved = convolution.CausalConv3d.forward
        convolution.CausalConv3d.forward = _still_forward

    def __exit__(self, *exc):
        convolution.CausalConv3d.forward = self.saved


def build():
    """ltx-core's encoder and decoder for tiny.VAE_CONFIG, float32 (their weights are all set afterwards)."""
    config = tiny.full_config()
    encoder = tiny._materialise(VideoEncoderConfigurator.from_config(config))
    decoder = tiny._materialise(VideoDecoderConfigurator.from_config(config))
    for module in (encoder, decoder):
        tiny._set_statistics(module)
    return encoder.float(), decoder.float()


K_ENCODER, K_DECODER = 2000.0, 400.0  # constant channels that keep each pixel norm + SiLU nearly linear


def _tap(conv, out: int, inp: int, value: float) -> None:
    conv.conv.weight[out, inp, -1, 1, 1] = value  # a still sums the temporal taps: any one will do


def route(encoder, decoder) -> None:
    """The hand-set paths between the fitted layers: what each block carries, in ltx-core's channel layouts.

    Per 32x32 block the latent is to hold luma at 4-pixel cells (64 numbers) and colour at 8-pixel cells (48).
    The encoder lays them into the space-to-depth channels ((c p1 p2 p3); on a still p1 = 0 and 1 are equal) of
    each block; the decoder's depth-to-space blocks unpack the same layout. Every kernel uses its centre tap.
    A large constant channel ahead of each PixelNorm + SiLU makes the norm nearly constant and the SiLU nearly
    linear. What the routing cannot place exactly (each block's mean path adds channel means) the two fitted
    layers absorb: the encoder's conv_out and the decoder's conv_out are solved by least squares (`fit`).
    """
    with torch.no_grad():
        for module in (encoder, decoder):
            for param in module.parameters():
                param.zero_()
        # Encoder: 4-pixel patch luma (120) and colour means (121-123), a constant (127).
        for k in range(48):
            _tap(encoder.conv_in, 120, k, 1 / 48)
            _tap(encoder.conv_in, 121 + k // 16, k, 1 / 16)
        encoder.conv_in.conv.bias[127] = K_ENCODER
        # Block 1 (to 8-pixel cells): luma of the 2x2 patches into channels 8-15; colour averages on its mean path.
        _tap(encoder.down_blocks[0].conv, 1, 120, 1.0)
        # Block 2 (to 16-pixel quadrants): each cell's 4 lumas (channels 16-47) and its colour (48-71).
        for sub in range(4):
            _tap(encoder.down_blocks[1].conv, 2 + sub, 12 + sub, 1.0)
        for c in range(3):
            _tap(encoder.down_blocks[1].conv, 6 + c, 121 + c, 1.0)
        # Block 3 (to the 32-pixel block, twice as wide): every quadrant's 16 lumas and 12 colour values.
        for cell in range(4):
            for sub in range(4):
                _tap(encoder.down_blocks[2].conv, cell * 4 + sub, (2 + sub) * 8 + 4 + cell, 1.0)
            for c in range(3):
                _tap(encoder.down_blocks[2].conv, 16 + c * 4 + cell, (6 + c) * 8 + 4 + cell, 1.0)
        # Decoder: latent channel q*16 + cell*4 + sub is the luma of 4-pixel cell `sub` of 8-pixel cell `cell` of
        # quadrant q; 64 + c*16 + q*4 + cell is colour c of that 8-pixel cell.
        for m in range(112):
            _tap(decoder.conv_in, m, m, 1.0)
        for p1 in range(2):
            for q in range(4):
                for k in range(16):
                    _tap(decoder.up_blocks[0].conv, k * 8 + p1 * 4 + q, q * 16 + k, 1.0)
                for c in range(3):
                    for cell in range(4):
                        _tap(
                            decoder.up_blocks[0].conv,
                            (16 + c * 4 + cell) * 8 + p1 * 4 + q,
                            64 + c * 16 + q * 4 + cell,
                            1.0,
                        )
            for cell in range(4):
                for sub in range(4):
                    _tap(decoder.up_blocks[1].conv, sub * 8 + p1 * 4 + cell, cell * 4 + sub, 1.0)
                for c in range(3):
                    _tap(decoder.up_blocks[1].conv, (4 + c) * 8 + p1 * 4 + cell, 16 + c * 4 + cell, 1.0)
            for sub in range(4):
                _tap(decoder.up_blocks[2].conv, p1 * 4 + sub, sub, 1.0)
                for c in range(3):
                    _tap(decoder.up_blocks[2].conv, (1 + c) * 8 + p1 * 4 + sub, 4 + c, 1.0)
        decoder.up_blocks[2].conv.conv.bias[7 * 8 : 8 * 8] = K_DECODER


def targets(crops: torch.Tensor) -> torch.Tensor:
    """What the latent should hold for each 32x32 block, in the decoder's layout: [blocks, 112]."""
    b, _, h, w = crops.shape
    luma = F.avg_pool2d(crops.mean(1, keepdim=True), 4)  # [b, 1, h/4, w/4]
    # (quadrant q = (qy qx), cell = (cy cx), sub = (sy sx)) inside each block: y = 4*(4qy + 2cy + sy) ...
    luma = luma.reshape(b, h // 32, 2, 2, 2, w // 32, 2, 2, 2)  # b, by, qy, cy, sy, bx, qx, cx, sx
    luma = luma.permute(0, 1, 5, 2, 6, 3, 7, 4, 8).reshape(b, h // 32, w // 32, 64)
    colour = F.avg_pool2d(crops, 8).reshape(b, 3, h // 32, 2, 2, w // 32, 2, 2)  # b, c, by, qy, cy, bx, qx, cx
    colour = colour.permute(0, 2, 5, 1, 3, 6, 4, 7).reshape(b, h // 32, w // 32, 48)
    return torch.cat([luma, colour], -1).reshape(-1, 112)


def _inputs_of(conv, run) -> torch.Tensor:
    """The tensor a module's convolution receives while `run()` executes."""
    seen = []
    handle = conv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        run()
    finally:
        handle.remove()
    return seen[0][:, :, 0]


def _lstsq(x: torch.Tensor, y: torch.Tensor, keep: torch.Tensor, ridge: float = 1e-6):
    """Least squares y ~ x[:, keep] @ w + b in float64 on standardised columns (the signals are tiny).

    The constant channels are left out (`keep`): their small wobble would get large weights that bf16 storage
    cannot hold, and the bias does their job."""
    x, y = x.double(), y.double()
    mean, std = x.mean(0), x.std(0)
    keep = keep & (std > 1e-12)
    xs = (x[:, keep] - mean[keep]) / std[keep]
    gram = xs.T @ xs + ridge * len(xs) * torch.eye(int(keep.sum()), dtype=x.dtype)
    solved = torch.linalg.solve(gram, xs.T @ (y - y.mean(0)))
    weight = torch.zeros(x.shape[1], y.shape[1], dtype=x.dtype)
    weight[keep] = solved / std[keep, None]
    return weight.float(), (y.mean(0) - mean @ weight).float()


def fit(encoder, decoder, crops: torch.Tensor) -> None:
    """Solve the encoder's and the decoder's output layers by least squares on `crops` ([n, 3, 128k, 128k])."""
    with torch.no_grad(), StillTraining():
        video = crops[:, :, None]
        # Encoder conv_out (centre tap): its input features at each block -> the block's 112 targets.
        feats = _inputs_of(encoder.conv_out, lambda: encoder(video))  # [n, 256, h/32, w/32]
        keep = torch.ones(feats.shape[1], dtype=torch.bool)
        keep[254:] = False  # the constant (mean path of channel 127)
        weight, bias = _lstsq(feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]), targets(crops), keep)
        encoder.conv_out.conv.weight.zero_()
        encoder.conv_out.conv.weight[:112, :, -1, 1, 1] = weight.T
        encoder.conv_out.conv.bias.zero_()
        encoder.conv_out.conv.bias[:112] = bias
        # Decoder conv_out (3x3, reflect padding): its input features around each 4-pixel patch -> the patch.
        latents = encoder(video)
        feats = _inputs_of(decoder.conv_out, lambda: decoder(latents))  # [n, 8, h/4, w/4]
        cols = F.unfold(F.pad(feats, (1, 1, 1, 1), mode="reflect"), 3)  # [n, 16*9, positions]
        patches = F.pixel_unshuffle(crops, 4)  # [n, 48, h/4, w/4], channel c*16 + sy*4 + sx
        # ltx-core's patchify orders a patch's channels (c, column, row): c*16 + sx*4 + sy.
        patches = patches.reshape(len(crops), 3, 4, 4, *patches.shape[2:]).transpose(2, 3).reshape(patches.shape)
        keep = torch.ones(feats.shape[1], 9, dtype=torch.bool)
        keep[7] = False  # the constant channel
        x = cols.permute(0, 2, 1).reshape(-1, cols.shape[1])
        weight, bias = _lstsq(x, patches.permute(0, 2, 3, 1).reshape(-1, 48), keep.flatten())
        decoder.conv_out.conv.weight.zero_()
        decoder.conv_out.conv.weight[:, :, -1] = weight.T.reshape(48, feats.shape[1], 3, 3)
        decoder.conv_out.conv.bias.copy_(bias)


def training_crops(images: list[torch.Tensor], count: int, seed: int) -> torch.Tensor:
    """128x128 crops of the sample pictures (random places, half of them mirrored) and generated pictures."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        if i % 4 == 3:
            out.append(generated_image(rng, 128))
            continue
        img = images[i % len(images)]
        if min(img.shape[1:]) < 128:
            img = F.interpolate(img[None], scale_factor=128 / min(img.shape[1:]) + 1e-3, mode="area")[0]
        y, x = rng.integers(img.shape[1] - 127), rng.integers(img.shape[2] - 127)
        crop = img[:, y : y + 128, x : x + 128]
        out.append(crop.flip(-1) if rng.uniform() < 0.5 else crop)
    return torch.stack(out)


def set_statistics(encoder, decoder, images: torch.Tensor) -> None:
    """Per-channel mean and std of the raw latent means, stored as the release does (shared by both sides)."""
    with torch.no_grad():
        latents = encoder(images[:, :, None])
    flat = latents.transpose(0, 1).reshape(latents.shape[1], -1)
    mean, std = flat.mean(1), flat.std(1).clamp_min(1e-3)
    for module in (encoder, decoder):
        module.per_channel_statistics.get_buffer("mean-of-means").copy_(mean)
        module.per_channel_statistics.get_buffer("std-of-means").copy_(std)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image, for pictures in [-1, 1] (peak-to-peak 2)."""
    mse = ((a.clamp(-1, 1) - b.clamp(-1, 1)) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse)


def evaluate(encoder, decoder, crops: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return psnr(decoder(encoder(crops[:, :, None]))[:, :, 0], crops)


def train(count: int, seed: int):
    encoder, decoder = build()
    route(encoder, decoder)
    start = time.perf_counter()
    images = sample_images()
    crops = training_crops(images, count, seed)
    fit(encoder, decoder, crops)
    set_statistics(encoder, decoder, crops)
    return encoder, decoder, time.perf_counter() - start


def still_weights(encoder, decoder) -> dict[str, torch.Tensor]:
    """The release's key names (vae.encoder.*, vae.decoder.*, vae.per_channel_statistics.*), bf16, with every
    3-D kernel stored as the sum of its temporal taps (tiny.place_still_kernels puts it back on a tap)."""
    out = {}
    for prefix, module in (("vae.encoder.", encoder), ("vae.decoder.", decoder)):
        for key, value in module.state_dict().items():
            if key.startswith("per_channel_statistics."):
                key = "vae." + key
            else:
                key = prefix + key
            if value.dim() == 5:
                value = value.sum(2)
            out[key] = value.detach().to(torch.bfloat16).contiguous()
    return out


def shipped_modules(path: Path):
    """The encoder and decoder exactly as `avatar models tiny` builds them from the file at `path`."""
    encoder, decoder = build()
    tiny.load_trained_video_vae(encoder, "vae.encoder.", path)
    tiny.load_trained_video_vae(decoder, "vae.decoder.", path)
    return encoder, decoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=192, help="128x128 training crops (a quarter generated)")
    parser.add_argument("--threads", type=int, default=1)  # spinning threads on shared cores cost 3x
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    encoder, decoder, seconds = train(args.crops, args.seed)
    metadata = {"avatar_tiny": tiny.TINY_MARKER, "vae_config": json.dumps(tiny.VAE_CONFIG, sort_keys=True)}
    tiny._save(still_weights(encoder, decoder), args.out, metadata=metadata)
    # What ships is bf16 still kernels: measure exactly those, placed on their taps, through the 3-D modules.
    held = evaluate(*shipped_modules(args.out), held_out_crops())
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.2f} MB) after {seconds:.0f} s of training; held-out astronaut 128x128 crops "
        f"(bf16, 3-D modules): PSNR mean {held.mean():.2f} dB, min {held.min():.2f} dB, max {held.max():.2f} dB",
        flush=True,
    )


if __name__ == "__main__":
    main()
