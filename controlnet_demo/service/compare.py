"""With and without: a request beside the same request with its ControlNets off (the locked model alone: at
strength 0 the engine does not run them at all) and at a sweep of strengths, every image from one seed, so that
what differs is the control alone."""

from __future__ import annotations

import dataclasses
import secrets

from .specs import MAX_SEED, GenerateSpec

STRENGTHS = (0.0, 0.5, 1.0, 1.5)


def label(strength: float | None) -> str:
    if strength is None:
        return "your settings"
    if strength == 0:
        return "ControlNet off"
    return f"strength {strength:g}"


def compare_specs(spec: GenerateSpec, strengths=STRENGTHS) -> list[tuple[str, GenerateSpec]]:
    """(label, spec) of each image: the request as it is (its first image) unless every unit's strength is one of
    `strengths` already, then each strength for every unit. One seed for all (a random one drawn here)."""
    seed = secrets.randbelow(MAX_SEED) if spec.seed == -1 else spec.seed
    one = dataclasses.replace(spec, seed=seed, num_images=1, residual_maps=False)
    own = {u.strength for u in spec.units}
    variants = [] if len(own) == 1 and own <= set(strengths) else [(label(None), one)]
    for strength in strengths:
        units = [dataclasses.replace(u, strength=strength) for u in spec.units]
        variants.append((label(strength), dataclasses.replace(one, units=units)))
    return variants
