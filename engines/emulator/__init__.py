"""The emulator engine: a simulated WhatsApp network stored in the database."""
