"""What a running service holds: settings, store, key cache, live policy set, recorder.

One `Service` per process. `start()` migrates the store, compiles the policies (refusing to
start if any does not check clean) and starts the watcher that keeps this worker's policy set
in step with reloads and publishes made through other workers.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from engine import diagnostics as dg

from .keys import KeyCache
from .policyset import PolicyHolder
from .recorder import Recorder
from .settings import Settings
from .store import Store

log = logging.getLogger("riskrules.service")


class StartupError(RuntimeError):
    pass


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings.database_url)
        self.keys = KeyCache(self.store, settings.key_cache_seconds)
        self.policies = PolicyHolder(settings.policies, self.store)
        self.recorder = Recorder(self.store)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="riskrules-watcher", daemon=True)

    def start(self) -> None:
        missing = [p for p in self.settings.policies if not Path(p).exists()]
        if missing:
            raise StartupError(f"the policy tree {', '.join(missing)} does not exist (see --policies)")
        self.store.migrate()
        diags = self.policies.load()
        errors = [d for d in diags if d.is_error]
        if errors:
            raise StartupError("the policies do not check clean:\n" + "\n".join(dg.render_text(d) for d in errors))
        if self.settings.watch_seconds > 0:
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.recorder.close()
        self.store.dispose()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.watch_seconds):
            try:
                self.policies.follow()
                self.store.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the store may be down for a while; keep serving
                log.warning("could not look for new policy versions: %s", exc)
