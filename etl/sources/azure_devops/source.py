"""Azure DevOps as a `Source`: one scope per project, one batch per page of builds (finish time ascending).

A batch's window runs from the previous batch's end (the committed watermark for the first) to the
newest finish time listed on its page; the builds' details are fetched lazily while it is staged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from etl.config import AzureDevOpsSource as AzureDevOpsConfig
from etl.secret_refs import SecretError
from etl.sources import SourceEnv
from etl.sources.azure_devops.client import AdoClient, AuthError, SourceError, Unreachable, client_for_source
from etl.sources.azure_devops.extract import AzureDevOpsExtractor, BuildBundle, BuildPage
from etl.sources.base import Batch, Item, Scope, ScopeFailed, SourceFailed, Start, Window
from etl.timeutil import to_utc_naive, utc_now


@dataclass
class _Unreadable(BuildBundle):
    """A build whose details could not be read: quarantined with `reason`, the batch goes on."""

    reason: str = ""


class _IsolatingExtractor(AzureDevOpsExtractor):
    """Reads each build's details; a build whose details cannot be read is quarantined alone.

    Service errors (SourceError: auth, host, exhausted retries) still propagate: they end the
    scope or the source, and the watermark stays where it was.
    """

    def bundle(self, project: str, build: dict[str, Any]) -> BuildBundle:
        try:
            return super().bundle(project, build)
        except SourceError:
            raise
        except Exception as exc:  # one bad build (corrupt archive, odd payload) must not stop the batch
            return _Unreadable(project, build, reason=_one_line(exc))


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _translated(exc: SourceError) -> Exception:
    """AuthError and Unreachable end the source; other service errors end the scope."""
    if isinstance(exc, AuthError | Unreachable):
        return SourceFailed(str(exc))
    return ScopeFailed(str(exc))


class AzureDevOpsReader:
    """Every project of one organization, batch by batch."""

    def __init__(self, name: str, client: AdoClient, projects: list[str], extractor: AzureDevOpsExtractor,
                 default_since: datetime, opt_out_projects: list[str]) -> None:
        self.name = name
        self.client = client
        self.projects = [p for p in projects if p not in set(opt_out_projects)]  # opted out: never requested
        self.extractor = extractor
        self.default_since = default_since

    def scopes(self) -> list[Scope]:
        return [Scope(self.name, self.client.organization, p) for p in self.projects]

    def batches(self, scope: Scope, start: Start) -> Iterator[Batch]:
        wm_from = start.watermark or self.default_since
        try:
            for listed in self.extractor.list_builds(scope.project, wm_from):
                if not listed and not getattr(listed, "audit", None):
                    continue
                readable, unreadable = self._readable(scope.project, listed)
                finish = [to_utc_naive(b.get("finishTime")) for b in readable]
                wm_to = max([*(t for t in finish if t is not None), wm_from])
                audit = list(getattr(listed, "audit", []))
                wanted = BuildPage([b for b in readable if self.extractor.wanted(b)], audit)
                batch = Batch(scope, Window(wm_from, wm_to), (), builds=len(wanted))
                if not wanted:  # listing findings with no build to carry them
                    batch.incomplete.extend(audit)
                batch.items = self._items(scope.project, wanted, unreadable, batch)
                yield batch
                wm_from = wm_to
        except SourceError as exc:
            raise _translated(exc) from None

    def _items(self, project: str, builds: BuildPage, unreadable: list[Item],
               batch: Batch) -> Iterator[Item]:
        yield from unreadable
        try:
            for bundle in self.extractor.iter_bundles(project, builds):
                batch.incomplete.extend(getattr(bundle, "audit", None) or [])
                if isinstance(bundle, _Unreadable):
                    yield Item(f"build {bundle.build.get('id')}", bundle.build, reason=bundle.reason)
                else:
                    yield Item(f"build {bundle.build_id}", bundle)
        except SourceError as exc:
            raise _translated(exc) from None

    @staticmethod
    def _readable(project: str, page: list[Any]) -> tuple[list[dict[str, Any]], list[Item]]:
        """The listed builds with a numeric id and a readable finish time, and Items for the others."""
        out, bad = [], []
        for item in page:
            ident = item.get("id") if isinstance(item, dict) else None
            try:
                int(ident)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                bad.append(Item(f"{project} build list item", item, f"missing or not a number {ident!r}", "id"))
                continue
            try:
                to_utc_naive(item.get("finishTime"))
            except (TypeError, ValueError):
                bad.append(Item(f"build {ident}", item, f"invalid datetime {item.get('finishTime')!r}", "finishTime"))
                continue
            out.append(item)
        return out, bad


def client_for(cfg: AzureDevOpsConfig) -> AdoClient:
    """The HTTP client of one configured organization; SourceFailed when its credentials cannot be had."""
    try:
        if cfg.auth == "pat" and cfg.token is not None:
            cfg.token.reveal()  # resolved now: an unresolvable secret ends this source before any request
        return client_for_source(cfg)
    except (SecretError, AuthError) as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceFailed(line if line.startswith(cfg.name) else f"{cfg.name}: {line}") from None


def extractor_for(cfg: Any, client: AdoClient, env: SourceEnv) -> AzureDevOpsExtractor:
    """The extractor of an Azure DevOps or simulator configuration."""
    return _IsolatingExtractor(
        client, definitions=getattr(cfg, "definitions", []), branches=getattr(cfg, "branches", []),
        opt_out_definitions=env.settings.privacy.opt_out.definitions, page_size=cfg.page_size,
        test_results=cfg.test_results, metrics_artifacts=cfg.metrics_artifacts,
        max_parallel_requests=cfg.max_parallel_requests, progress=env.progress, limits=env.settings.limits,
        timelines_outlined=True)


@contextlib.contextmanager
def open_azure_devops(cfg: AzureDevOpsConfig, env: SourceEnv) -> Iterator[AzureDevOpsReader]:
    """Registry factory for `kind: azure_devops`."""
    client = client_for(cfg)
    try:
        default = utc_now() - timedelta(days=cfg.initial_lookback_days)
        yield AzureDevOpsReader(cfg.name, client, list(cfg.projects), extractor_for(cfg, client, env), default,
                                env.settings.privacy.opt_out.projects)
    finally:
        client.close()


__all__ = ["AzureDevOpsReader", "BuildBundle", "client_for", "extractor_for", "open_azure_devops"]
