"""Start a generator on a wider codec: the latent channels it knows keep their weights, new ones start at zero.

A ``pca`` codec of 64 components whose first 32 are another codec's 32 has that codec's latent space as its
first channels; the 32 more carry the spectral detail the narrower one drops. A generator trained on the
narrow codec then knows half of the new task: :func:`widen_generator` copies every weight, maps the latent
inputs and read-out rows to the same channels of the wider network and starts the new channels' input
weights and read-out rows at zero, so the widened network first predicts exactly what the narrow one did
for the old channels and nothing for the new ones. :func:`check_codec_extends` refuses a codec whose first
channels are not the old latent space (such a start would only scramble what the network knew).
"""

from __future__ import annotations

import dataclasses

import torch

from v2a.audio.codec import PCA_ARCHITECTURES, Codec
from v2a.errors import InputError
from v2a.model.dit import AudioDiT

# float16 storage of a bundled codec moves its centre by up to about 4e-3 and its components by about 1e-4;
# a codec fitted on other crops differs by far more (1.87 in log-scale for the shared-scale PCA-64 codec)
_TOLERANCE = 1e-2


def check_codec_extends(wide: Codec, narrow: Codec) -> None:
    """Raise unless ``wide``'s first channels are ``narrow``'s latent: same spec, projection and normalisation.

    Both must be ``pca`` codecs (their latent is a projection, comparable row by row) with the same frame
    stacking; ``wide`` must have more components, and its leading components, centre and latent
    statistics must equal ``narrow``'s (within float16 rounding).

    Raises:
        InputError: naming the first thing that differs.
    """
    for name, codec in (("the new codec", wide), ("the started generator's codec", narrow)):
        if codec.config.architecture not in PCA_ARCHITECTURES:
            raise InputError(
                f"widening a generator needs pca codecs; {name} is {codec.config.architecture!r}"
            )
    c = narrow.config.latent_dim
    if wide.config.latent_dim <= c:
        raise InputError(f"the new codec has {wide.config.latent_dim} latent channels, not more than {c}")
    if (wide.spec.name, wide.config.downsample) != (narrow.spec.name, narrow.config.downsample):
        raise InputError("the new codec stacks other mel frames than the started generator's codec")
    wb, nb = wide.encoder.basis, narrow.encoder.basis
    pairs = {
        "principal components": (wb.components[:c], nb.components),
        "centre": (wb.center, nb.center),
        "latent means": (wide.latent_mean[:c], narrow.latent_mean),
        "latent scales": (wide.latent_std[:c].log(), narrow.latent_std.log()),
    }
    for what, (a, b) in pairs.items():
        gap = float((a.float() - b.float()).abs().max())
        if gap > _TOLERANCE:
            raise InputError(
                f"the new codec's first {c} channels are not the started generator's latent space: "
                f"its {what} differ by up to {gap:.3g} (fit the wider codec on the same crops, e.g. "
                "`v2a train codec --preset pca --latent-dim N` with the same --stats-clips and --seed)"
            )


def widen_generator(net: AudioDiT, latent_dim: int) -> AudioDiT:
    """A copy of ``net`` modelling ``latent_dim`` latent channels, the first ``net.cfg.latent_dim`` as before.

    The input projection reads ``[x_t (C), context (C), context mask (1)]``; each block moves to its place in
    the wider layout. New channels get zero input weights, zero read-out rows, mean 0 and scale 1 (the
    trainer measures their statistics before the first step).

    Raises:
        InputError: ``latent_dim`` is not larger than the network's.
    """
    old = net.cfg.latent_dim
    if latent_dim <= old:
        raise InputError(f"cannot widen a generator of {old} latent channels to {latent_dim}")
    wide = AudioDiT(dataclasses.replace(net.cfg, latent_dim=latent_dim)).to(net.latent_mean.device)
    source = net.state_dict()
    target = wide.state_dict()  # its tensors share the wide network's storage: writing them sets the weights
    # (old layout, wide layout) of the input projection's channels: x_t, context, context mask
    input_rows = [
        (slice(0, old), slice(0, old)),
        (slice(old, 2 * old), slice(latent_dim, latent_dim + old)),
        (slice(2 * old, 2 * old + 1), slice(2 * latent_dim, 2 * latent_dim + 1)),
    ]
    with torch.no_grad():
        for key, value in target.items():
            src = source[key]
            if src.shape == value.shape:
                value.copy_(src)
                continue
            value.zero_()
            if key == "input_proj.conv1.weight":  # (D, 2C + 1, k)
                for s, t in input_rows:
                    value[:, t] = src[:, s]
            elif key in ("final.linear.weight", "final.linear.bias", "latent_mean"):
                value[:old] = src
            elif key == "latent_std":
                value.fill_(1.0)
                value[:old] = src
            else:
                raise AssertionError(f"unexpected latent-sized parameter {key} {tuple(src.shape)}")
    return wide.train(net.training)
