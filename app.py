"""Start the ControlNet demo: `python app.py` (prints the local URL). Settings come from CONTROLNET_DEMO_* env vars."""

import logging

from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import launch


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
        if settings.ray_app:  # the models on a Ray Serve deployment; this process is the UI only
            from controlnet_demo.serving.ray_serve import RemoteService

            service = RemoteService.connect(settings)
        else:
            service = ControlNetService(settings)
    except ValueError as exc:  # a setting that makes no sense: said in words, no traceback
        raise SystemExit(f"controlnet_demo: {exc}") from None
    log = logging.getLogger("controlnet_demo")
    if service.compile_mode:
        log.info("fast mode (%s): compiling (minutes on a CPU) ...", service.compile_mode)
        log.info("fast mode: warmed up in %.0f s", service.warm_up())
    elif service.capacity > 1:  # every device's weights resident before the first requests share them out
        log.info("%d engines (one per device): loaded in %.0f s", service.capacity, service.warm_up())
    launch(service)


if __name__ == "__main__":
    main()
