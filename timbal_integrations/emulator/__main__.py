"""``python -m timbal_integrations.emulator``: serve the emulator (see ``--help``)."""

from timbal_integrations.emulator.cli import main

raise SystemExit(main())
