"""Start the ControlNet demo: `python app.py` (prints the local URL). Settings come from CONTROLNET_DEMO_* env vars."""

import logging

from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import launch

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
    if service.compile_mode:
        log.info("fast mode (%s): compiling (minutes on a CPU) ...", service.compile_mode)
        log.info("fast mode: warmed up in %.0f s", service.warm_up())
    elif service.capacity > 1:  # every device's weights resident before the first requests share them out
        log.info("%d engines (one per device): loaded in %.0f s", service.capacity, service.warm_up())
    return service


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        service = make_service(Settings.from_env())
    except ValueError as exc:  # a setting that makes no sense: said in words, no traceback
        raise SystemExit(f"controlnet_demo: {exc}") from None
    launch(service)


if __name__ == "__main__":
    main()
