"""Engines: the one contract every WhatsApp engine implements (``engines.contract``),
the events they report (``engines.events``) into one sink (``engines.sink``), and the
registry that finds an instance's engine by name (``engines.registry``).

Implementations live in sub-packages (``engines.emulator``, ``engines.waweb``,
``engines.cloud``). They import this contract and ``instances``; they never import
``messaging``, ``journals``, ``statuses`` or ``dashboard``, and those never import an
implementation: they meet here.
"""
