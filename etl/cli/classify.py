"""`ci-telemetry classify`: re-apply failure rules, human overrides and known issues to stored history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from etl.cli.common import ConfigOption, fail, load_settings, user_errors
from etl.timeutil import utc_now

# Spelled out so `--help` imports no rule model (pydantic, re2); a test keeps it equal to etl.classify.rules.CATEGORIES.
CATEGORY_NAMES = ("network", "dependency", "architecture", "compilation", "test", "timeout", "cancelled",
                  "configuration", "infrastructure", "resource", "permission", "security", "packaging", "unknown")

classify_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
)

TABLES = ("TimelineIssues", "TimelineRecords", "TestResults", "BuildMetrics")


def _parse_since(value: str | None, default_days: int) -> datetime:
    if not value:
        return utc_now() - timedelta(days=default_days)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since {value!r}: expected a date such as 2026-01-31 or 2026-01-31T12:00")
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


@classify_app.callback()
def classify(
    ctx: typer.Context,
    rebuild_: Annotated[
        bool, typer.Option("--rebuild", help="Write the changes (without it: only report what would change).")
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Only builds queued on or after this date (default: retention window).")
    ] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Re-apply the current failure rules, FailureTriage overrides and known issues to stored rows.

    Only rows whose classification changed are re-ingested (same key, so they replace the old row); running
    it twice changes nothing. Known-issue rules are evaluated for every build attempt whose rule version has
    no KnownIssueMatches ledger row yet, so a new or edited rule is back-applied over history.

    Example: ci-telemetry classify --rebuild --since 2026-01-01
    """
    # Click runs a group's callback before it parses the subcommand's options: return before
    # importing anything, so `classify triage --help` stays as light as every other --help.
    if ctx.invoked_subcommand is not None:
        return
    from etl.classify import RuleFileError, classifier_for
    from etl.classify.known_issues import evaluate_known_issues, known_issues_for
    from etl.classify.rebuild import rebuild
    from etl.warehouse import connected

    settings = load_settings(config)
    start = _parse_since(since, settings.retention.details_days)
    with user_errors():
        try:
            classifier = classifier_for(settings)
            issues = known_issues_for(settings)
        except RuleFileError as exc:
            for line in str(exc).splitlines():
                typer.echo(f"error: {line}", err=True)
            raise typer.Exit(2) from None
        with connected(settings) as warehouse:
            outcome = rebuild(warehouse, classifier, start, dry_run=not rebuild_)
            known = evaluate_known_issues(warehouse, issues, start, dry_run=not rebuild_)
    verb = "changed" if rebuild_ else "would change"
    typer.echo(f"Reclassified failures since {start:%Y-%m-%d %H:%M}:")
    for table in TABLES:
        typer.echo(f"  {table}: {outcome.changed.get(table, 0)} {verb} (of {outcome.examined.get(table, 0)} examined)")
    typer.echo("Known issues (build attempts evaluated / present):")
    if not issues:
        typer.echo("  (no known-issue rules configured)")
    for rule in issues:
        rid = rule.issue.id
        typer.echo(f"  {rid}: {known.evaluated.get(rid, 0)} / {known.present.get(rid, 0)}")
    if not rebuild_:
        typer.echo("Dry run: nothing written; add --rebuild to apply.")


@classify_app.command("triage")
def triage(
    build: Annotated[int, typer.Option("--build", help="Build id.")],
    category: Annotated[str, typer.Option("--category", help=f"One of: {', '.join(CATEGORY_NAMES)}.")],
    project: Annotated[str, typer.Option("--project", help="Project name.")],
    record: Annotated[str, typer.Option("--record", help="Timeline record id ('' for a build validation result).")] = "",
    attempt: Annotated[int, typer.Option("--attempt", help="Attempt number.")] = 1,
    index: Annotated[
        int, typer.Option("--index", help="Issue index; -1 overrides the record itself.")
    ] = 0,
    origin: Annotated[str | None, typer.Option("--origin", help="infrastructure or code (default: per category).")] = None,
    organization: Annotated[
        str | None, typer.Option("--organization", help="Organization (default: looked up from the build).")
    ] = None,
    known_issue: Annotated[str | None, typer.Option("--known-issue", help="Known-issue id this failure is.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text (redacted before it is stored).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who triaged (pseudonymized before it is stored).")] = None,
    config: ConfigOption = None,  # type: ignore[assignment]
) -> None:
    """Record a human classification of one failure in FailureTriage; it wins over rules on the next rebuild.

    Example: ci-telemetry classify triage --project app --build 1234 --record 5f0c... --attempt 1 --index 0 --category network
    """
    from etl.classify.rules import CATEGORIES, DEFAULT_ORIGINS
    from etl.warehouse import connected

    category = category.lower()
    if category not in CATEGORIES:
        fail(f"--category {category!r}: expected one of {', '.join(CATEGORIES)}")
    if origin is not None and origin not in ("infrastructure", "code"):
        fail(f"--origin {origin!r}: expected infrastructure or code")
    from etl.privacy import scrubber_for

    settings = load_settings(config)
    with user_errors(), connected(settings) as warehouse:
        org = organization
        if org is None:
            found = warehouse.query(
                "declare query_parameters(p:string, b:long);\n"
                "LatestTimelineBuilds | where Project == p and BuildId == b | project Organization",
                {"p": project, "b": build},
            )
            if found.empty:
                fail(f"build {build} of project {project!r} is not in the store; pass --organization")
            org = str(found.iloc[0, 0])
        scrubber = scrubber_for(settings)
        now = utc_now()
        row = {
            "Organization": org,
            "Project": project,
            "BuildId": build,
            "RecordId": record,
            "Attempt": attempt,
            "IssueIndex": index,
            "FailureCategory": category,
            "FailureOrigin": origin or DEFAULT_ORIGINS[category],
            "KnownIssue": known_issue,
            "TriagedBy": scrubber.pseudonymize(by),
            "Note": scrubber.redact(note),
            "TriagedAt": now,
            "IngestedAt": now,
        }
        warehouse.ingest("FailureTriage", [row], f"triage-{now:%Y%m%dT%H%M%S%f}")
    typer.echo(f"Recorded: {project}/{build} record {record or '(validation)'} attempt {attempt} index {index} -> "
               f"{category}. Run `ci-telemetry classify --rebuild` to apply it.")


def register(app: typer.Typer) -> None:
    app.add_typer(classify_app, name="classify")
