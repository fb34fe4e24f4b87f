"""Which models serve the app: the presets, their loading, the small architectures, and what ships measured."""
