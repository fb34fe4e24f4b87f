"""`python -m controlnet_demo generate | detect | train | evaluate ...`: see `controlnet_demo.cli`."""

from .cli import main

raise SystemExit(main())
