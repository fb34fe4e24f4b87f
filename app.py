"""Start the ControlNet demo: `python app.py` (prints the local URL). Settings come from CONTROLNET_DEMO_* env vars."""

import logging

from controlnet_demo.service import Demo
from controlnet_demo.settings import Settings
from controlnet_demo.ui import launch


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    demo = Demo(Settings.from_env())
    if demo.settings.compile:
        logging.getLogger("controlnet_demo").info("fast mode (%s): compiling (minutes on a CPU) ...", demo.engine.compile_mode)
        logging.getLogger("controlnet_demo").info("fast mode: warmed up in %.0f s", demo.warm_up())
    launch(demo)


if __name__ == "__main__":
    main()
