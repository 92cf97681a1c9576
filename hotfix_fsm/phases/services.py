"""The adapters phases use, created lazily so a command imports git, GitHub or HTTP code
only when a phase needs it. Tooling replaces any of them by passing a factory."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.paths import state_root

if TYPE_CHECKING:
    import requests

    from hotfix_fsm.adapters.alerts import Alerter
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.adapters.github import GitHubClient
    from hotfix_fsm.config import Config

Factory = Callable[["Services"], Any]

__all__ = ["Factory", "Services", "state_root"]


class Services:
    """Lazily built adapters for one hotfix's repository and configuration."""

    def __init__(
        self,
        config: Config,
        repo: str | os.PathLike[str],
        *,
        factories: dict[str, Factory] | None = None,
    ) -> None:
        self.config = config
        self.repo = Path(repo)
        self._factories = dict(factories or {})
        self._made: dict[str, Any] = {}
        self._lock = threading.RLock()

    def _get(self, name: str, default: Factory) -> Any:
        with self._lock:  # parallel gates share one adapter of each kind
            if name not in self._made:
                self._made[name] = self._factories.get(name, default)(self)
            return self._made[name]

    @property
    def git(self) -> GitRepo:
        def make(s: Services) -> Any:
            from hotfix_fsm.adapters.git import GitRepo
            from hotfix_fsm.config import CONFIG_FILE

            own = [CONFIG_FILE]
            if os.path.isabs(s.config.source):  # a --config file inside the work tree
                own.append(s.config.source)
            return GitRepo(
                s.repo, remote=s.config.remote, timeout=s.config.git_timeout, config_files=own
            )

        return self._get("git", make)  # type: ignore[no-any-return]

    @property
    def github(self) -> GitHubClient:
        def make(s: Services) -> Any:
            from hotfix_fsm.adapters.github import GitHubClient

            return GitHubClient.from_config(s.config, s.repo)

        return self._get("github", make)  # type: ignore[no-any-return]

    @property
    def http(self) -> requests.Session:
        def make(_s: Services) -> Any:
            import requests

            session = requests.Session()
            session.headers["User-Agent"] = "hotfix-fsm"
            return session

        return self._get("http", make)  # type: ignore[no-any-return]

    @property
    def alerts(self) -> Alerter:
        def make(s: Services) -> Any:
            from hotfix_fsm.adapters.alerts import Alerter

            return Alerter.from_config(s.config, lambda: s.http)

        return self._get("alerts", make)  # type: ignore[no-any-return]

    def get(self, name: str) -> Any:
        """A custom service a plugged-in phase registered under ``name``."""
        if name not in self._factories:
            raise KeyError(f"no service named {name!r}")
        return self._get(name, self._factories[name])

    def hotfix_dir(self, hotfix_id: str) -> Path:
        path = state_root() / "hotfixes" / hotfix_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        for made in self._made.values():
            closer = getattr(made, "close", None)
            if callable(closer):
                closer()
        self._made.clear()
