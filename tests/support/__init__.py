"""Helpers shared by every test folder: ``from tests.support.runs import make_run``.

``tests`` is a package, and pytest puts the repository root on ``sys.path``, so every
test module imports helpers the same way: ``tests.support.<module>`` for what folders
share, ``tests.<folder>.helpers_<folder>`` for what one folder needs.

- :mod:`tests.support.runs`: the run factory (``make_run``, ``make_runs``);
- :mod:`tests.support.processes`: ``timbal-runs`` as a real process, and polling;
- :mod:`tests.support.files`: watching an export's files from another thread;
- :mod:`tests.support.truth`: the emulator's truth (runs of a window, their statistics)
  and the orchestrator tests' emulator with a watched key.
"""
