"""The emulator engine's transport (moving to ``engines.emulator``)."""
