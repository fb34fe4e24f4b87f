"""Latent consistency distillation, the LCM paper's recipe as diffusers' `train_lcm_distill_lora_sd_wds.py` runs it.

A student (the base U-Net plus a LoRA) learns to map any point z_{t_{n+k}} of the teacher's probability-flow ODE
straight to the trajectory's origin: its consistency function f(z, t) = c_skip(t) z + c_out(t) x0_theta(z, t) is
pulled towards its own value (no gradient) one DDIM step of the guided teacher further along the same trajectory,
f(z_hat_{t_n}, t_n). The teacher is the locked base with classifier-free guidance at a scale drawn per example, so
the student learns the guided trajectory and needs no CFG pass at sampling (half the U-Net work per step), and it
samples in 2 to 8 steps with diffusers' LCMScheduler, whose boundary scalings and timesteps these are.
"""

from __future__ import annotations

import torch


def _per_example(values: torch.Tensor, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(like.device)[index].to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def boundary_scalings(t: torch.Tensor, sigma_data: float = 0.5, timestep_scaling: float = 10.0):
    """c_skip, c_out of LCMScheduler.get_scalings_for_boundary_condition_discrete: f(z, 0) = z, smoothly."""
    scaled = timestep_scaling * t.float()
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


class DDIMSolver:
    """The teacher's ODE solver on a grid of `steps` timesteps (19, 39, ..., 999 for 50): one DDIM step from grid
    point n to n - 1."""

    def __init__(self, alphas_cumprod: torch.Tensor, train_timesteps: int = 1000, steps: int = 50):
        ratio = train_timesteps // steps
        self.timesteps = torch.arange(1, steps + 1) * ratio - 1  # (steps,)
        self.skip = ratio  # k: the distance in training timesteps between two grid points
        alphas = alphas_cumprod.float()
        self.alphas_prev = torch.cat([alphas[:1], alphas[self.timesteps[:-1]]])

    def step(self, x0: torch.Tensor, eps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        a_prev = _per_example(self.alphas_prev, index, x0)
        return a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps


def x0_and_eps(output, t, sample, prediction_type: str, alphas_cumprod: torch.Tensor):
    """The model's estimate of the clean latents and of the noise, from its output at timestep t."""
    a = _per_example(alphas_cumprod.float().sqrt(), t, sample)
    s = _per_example((1 - alphas_cumprod.float()).sqrt(), t, sample)
    if prediction_type == "v_prediction":
        return a * sample - s * output, a * output + s * sample
    if prediction_type == "epsilon":
        return (sample - s * output) / a, output
    raise ValueError(f"prediction type {prediction_type!r} is not supported for distillation")


def consistency_loss(
    student,
    teacher,
    scheduler,
    solver: DDIMSolver,
    latents: torch.Tensor,
    text: torch.Tensor,
    empty_text: torch.Tensor,
    guidance: tuple[float, float],
    generator: torch.Generator,
    huber_c: float = 1e-3,
) -> torch.Tensor:
    """One batch's distillation loss. latents (B, 4, h, w) scaled as the U-Net sees them; text (B, 77, D); empty_text
    the "" prompt's (1, 77, D); guidance the (min, max) CFG scale in the app's convention, uncond + g (cond -
    uncond), drawn uniformly per example. The noise and picks are drawn on `generator` (a CPU one), so a run is the
    same on any device."""
    from diffusers.utils.torch_utils import randn_tensor

    b, device = latents.shape[0], latents.device
    alphas = scheduler.alphas_cumprod.to(device)
    kind = scheduler.config.prediction_type

    index = torch.randint(0, len(solver.timesteps), (b,), generator=generator)
    start = solver.timesteps[index].to(device)  # t_{n+k}
    end = (start - solver.skip).clamp(min=0)  # t_n
    noise = randn_tensor(latents.shape, generator=generator, device=device, dtype=latents.dtype)
    g = guidance[0] + (guidance[1] - guidance[0]) * torch.rand(b, generator=generator)
    w = (g - 1).to(device, latents.dtype).reshape(b, 1, 1, 1)  # the LCM paper's w: cond + w (cond - uncond)
    z = scheduler.add_noise(latents, noise, start)

    def f(model, sample, t):  # the consistency function
        x0, _ = x0_and_eps(model(sample, t, encoder_hidden_states=text, return_dict=False)[0], t, sample, kind, alphas)
        c_skip, c_out = (c.to(sample.dtype).reshape(b, 1, 1, 1) for c in boundary_scalings(t))
        return c_skip * sample + c_out * x0

    prediction = f(student, z, start)
    with torch.no_grad():
        both = teacher(
            torch.cat([z, z]),
            torch.cat([start, start]),
            encoder_hidden_states=torch.cat([text, empty_text.expand_as(text)]),
            return_dict=False,
        )[0].to(z.dtype)
        (x0_c, eps_c), (x0_u, eps_u) = (x0_and_eps(o, start, z, kind, alphas) for o in both.chunk(2))
        x_prev = solver.step(x0_c + w * (x0_c - x0_u), eps_c + w * (eps_c - eps_u), index.to(device))
        target = f(student, x_prev, end)  # the student itself, not an EMA copy: the LoRA recipe's choice
    diff = prediction.float() - target.float()
    return (torch.sqrt(diff**2 + huber_c**2) - huber_c).mean()
