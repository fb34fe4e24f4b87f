"""What several test modules build the same way: the app's engine on a ModelStore's models."""

from __future__ import annotations


def engine_on(store, **kwargs):
    """The engine the service makes: the store's base and (lazily loaded) ControlNets, on its device and dtype."""
    from controlnet_demo.engine import Engine

    return Engine(store.base, store.controlnets, store.device, store.dtype, **kwargs)


def serve(settings, **service_kwargs):
    """The real app on a free local port: (url, service, blocks); close it with blocks.close(). The one way the
    tests launch it (the session's `launched_app`, and apps with other settings)."""
    from app import make_trainer
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.ui import build, launch

    service = ControlNetService(settings, **service_kwargs)
    blocks = build(service, make_trainer(settings, service))  # the Train tab as app.py makes it (settings.training)
    launch(service, blocks, prevent_thread_lock=True, quiet=True)
    return blocks.local_url.rstrip("/"), service, blocks


def small_spec(astronaut, **changes):
    """A small canny request on the tiny preset (3 steps, 64 px, seed 5), with `changes`."""
    import dataclasses

    from controlnet_demo.service import GenerateSpec, UnitSpec

    spec = GenerateSpec(
        "a red circle", [UnitSpec("canny", astronaut, preprocess_resolution=128)], steps=3, seed=5, resolution=64
    )
    return dataclasses.replace(spec, **changes)
