"""Start the ControlNet demo: `python app.py` (prints the local URL). Settings come from CONTROLNET_DEMO_* env vars."""

import logging

from controlnet_demo.engine.fast_mode import AOT_MODE
from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import launch
from controlnet_demo.ui.widgets import on_gpu

AOT_COMPILE_S = 1500  # what ZeroGPU lets the start-up compile take (its documentation's example asks as much)

log = logging.getLogger("controlnet_demo")


def make_service(settings: Settings) -> ControlNetService:
    """The service the app serves: in this process, or the front of a Ray Serve deployment. On ZeroGPU every model
    is loaded (onto its emulated CUDA) here, at start-up, as ZeroGPU asks; the fast mode compiles, and several
    devices load their weights, here too."""
    if settings.ray_app:  # the models on a Ray Serve deployment; this process is the UI only
        from controlnet_demo.serving.ray_serve import RemoteService

        return RemoteService.connect(settings)  # the replicas load and warm up their own models
    if settings.zero_gpu:
        import spaces  # noqa: F401  (first: it makes torch see ZeroGPU's CUDA before a device is picked)
    service = ControlNetService(settings)
    if settings.zero_gpu:
        for store in service.stores:
            store.load_all()
        if missing := service.detectors.load_all():
            log.warning("ZeroGPU: detectors without their weights (used on demand they say why): %s", missing)
        log.info("ZeroGPU: every model loaded onto %s at start-up", service.store.device)
    if settings.zero_gpu and service.compile_mode == AOT_MODE:  # compiled on a GPU worker, handed back here

        @on_gpu(duration=AOT_COMPILE_S)
        def compile_ahead(side: int):
            return service.compile_ahead(sides=(side,))

        for side in service.aot_sides():  # one GPU call per size: each within its time
            log.info("ZeroGPU: compiling the U-Net and ControlNets ahead of time for %d px ...", side)
            service.install_graphs(compile_ahead(side))
    elif service.compile_mode:
        log.info("fast mode (%s): compiling (minutes on a CPU) ...", service.compile_mode)
        log.info("fast mode: warmed up in %.0f s", service.warm_up())
    elif service.capacity > 1:  # every device's weights resident before the first requests share them out
        log.info("%d engines (one per device): loaded in %.0f s", service.capacity, service.warm_up())
    return service


def make_trainer(settings: Settings, service: ControlNetService):
    """The "Train one yourself" tab's trainer, or None where training is off: by the setting, on a Ray front (the
    models are elsewhere) and on ZeroGPU (a run would hold the GPU for minutes). On the service's first device,
    each of its steps after the users' jobs."""
    if not settings.training or settings.ray_app or settings.zero_gpu:
        return None
    from controlnet_demo.lab.training.job import Trainer  # the lab, for this tab alone

    if not Trainer.base_installed():
        log.warning("the Train tab is off: the offline model (its base) is not installed")
        return None

    return Trainer(device=str(service.store.device), turn=service.priority.background)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        service = make_service(settings)
    except ValueError as exc:  # a setting that makes no sense: said in words, no traceback
        raise SystemExit(f"controlnet_demo: {exc}") from None
    launch(service, trainer=make_trainer(settings, service))


if __name__ == "__main__":
    main()
