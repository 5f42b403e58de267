"""Schedule definitions from options and from the TOML file, and syncing the file into the table (both ledgers)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store.models import ImportKind, Schedule, ScheduleItem, ScheduleKind, ScheduleSource
from store.schedules import (
    FileScheduleError,
    ScheduleExistsError,
    get_schedule,
    list_schedules,
    remove_schedule,
    set_paused,
)
from triggers.schedules.firing import fire
from triggers.schedules.schedule_file import FileWatcher, ScheduleFileError, parse_schedules, sync_schedule_file
from triggers.schedules.specs import InvalidSchedule, build_definition, check_filter

from .conftest import CAMPAIGN, NOW, SOURCE, TARGET, Harness, at

FILE_A = Path("/etc/dsimport/a/schedules.toml")
FILE_B = Path("/etc/dsimport/b/schedules.toml")

EXAMPLE = f"""
[schedules.hourly-review]
every = "1h"
kind = "campaign"
dataset = "{TARGET}"
campaign = "{CAMPAIGN}"

[schedules.support-events]
cron = "*/15 * * * *"
kind = "explorer-window"
dataset = "{TARGET}"
filter = {{ field = "extra_fields.team", op = "eq", value = "support" }}
chunk_size = 200
since = 2026-01-01T00:00:00Z

[schedules.review-when-done]
every = "5m"
kind = "campaign-when-done"
dataset = "{TARGET}"
campaign = "{CAMPAIGN}"

[schedules.mirror]
every = 86400
kind = "dataset-copy"
dataset = "{TARGET}"
from_dataset = "{SOURCE}"
paused = true
"""


def test_the_example_file_parses_into_four_definitions() -> None:
    definitions = {d.name: d for d in parse_schedules(EXAMPLE)}
    assert set(definitions) == {"hourly-review", "support-events", "review-when-done", "mirror"}
    hourly = definitions["hourly-review"]
    assert (hourly.kind, hourly.import_kind, hourly.every_s, hourly.cron) == (
        ScheduleKind.PLAIN, ImportKind.CAMPAIGN, 3600, None
    )  # fmt: skip
    assert hourly.params == {"campaign_id": CAMPAIGN}
    window = definitions["support-events"]
    assert window.kind == ScheduleKind.EXPLORER_WINDOW and window.cron == "*/15 * * * *"
    assert window.params == {
        "filter": {"field": "extra_fields.team", "op": "eq", "value": "support"},
        "chunk_size": 200,
    }
    assert window.start == datetime(2026, 1, 1, tzinfo=UTC)
    mirror = definitions["mirror"]
    assert mirror.params == {"from_dataset_id": SOURCE, "chunk_size": 100}
    assert mirror.paused is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[schedules.x]\nevery='1m'\nkind='campaign'\n", "[schedules.x]: a campaign schedule needs dataset"),
        (f"[schedules.x]\nevery='1m'\nkind='teleport'\ndataset='{TARGET}'\n", "unknown schedule kind 'teleport'"),
        (f"[schedules.x]\nkind='campaign'\ndataset='{TARGET}'\ncampaign='{CAMPAIGN}'\n", "exactly one of cron"),
        (f"[schedules.x]\nevery='1m'\nkind='campaign'\ndataset='{TARGET}'\ncampain='{CAMPAIGN}'\n", "campain"),
        (f"[schedules.x]\nevery='1m'\nkind='campaign'\ndataset='{TARGET}'\ncampaign='nope'\n", "not a valid UUID"),
        (f"[schedules.x]\ncron='61 * * * *'\nkind='campaign'\ndataset='{TARGET}'\ncampaign='{CAMPAIGN}'\n", "minute"),
        (f"[schedules.x]\nevery='1m'\nkind='dataset'\ndataset='{TARGET}'\nfrom_dataset='{SOURCE}'\n", "dataset-copy"),
        (f"[schedules.x]\nevery='1m'\nkind='spans'\ndataset='{TARGET}'\nspans=['t:s']\n", "needs mapping"),
        (f"[schedules.x]\nevery='1m'\nkind='spans'\ndataset='{TARGET}'\nspans=['t']\nmapping=['i=span_attributes:k']\n",
         "expected TRACE_ID:SPAN_ID"),
        (f"[schedules.x]\nevery='1m'\nkind='explorer-window'\ndataset='{TARGET}'\nchunk_size=0\n", "chunk_size"),
        (f"[schedules.x]\nevery='1m'\nkind='explorer-window'\ndataset='{TARGET}'\nfilter='x'\n", "filter must be"),
        (f"[schedules.x]\nevery='1m'\nkind='explorer-window'\ndataset='{TARGET}'\nsince='soon'\n", "since 'soon'"),
        (f"[schedules.x]\nevery='1m'\nkind='file'\ndataset='{TARGET}'\nfile_id='f'\npaused=1\n", "paused"),
        (f"[schedules.'bad name']\nevery='1m'\nkind='file'\ndataset='{TARGET}'\nfile_id='f'\n", "schedule name"),
        (f"[schedules.x]\nevery='1m'\nkind='dataset-copy'\ndataset='{TARGET}'\nfrom_dataset='{TARGET}'\n", "itself"),
        ("[schedules.x]\nevery='1m'\nkind='file'\ndataset='My Set'\nfile_id='f'\n",
         "dataset: 'My Set' is not a dataset UUID or slug"),
        (f"[schedules.x]\nevery='1m'\nkind='dataset-copy'\ndataset='{TARGET}'\nfrom_dataset='a/b'\n",
         "from_dataset: 'a/b' is not a dataset UUID or slug"),
        ("[schedule.x]\n", "unknown top-level key(s) schedule"),
        ("schedules = 3\n", "must be a table"),
        ("[schedules.x\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_table_and_the_mistake(text: str, message: str) -> None:
    with pytest.raises(ScheduleFileError) as caught:
        parse_schedules(text, source="sched.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("sched.toml")


def test_datasets_may_be_named_by_slug() -> None:
    plain = build_definition("x", kind="file", dataset="eval-set", every="1m", options={"file_id": "f"})
    options = {"from_dataset": "src"}
    copy = build_definition("y", kind="dataset-copy", dataset=TARGET.upper(), every="1m", options=options)
    assert plain.dataset_id == "eval-set"
    assert (copy.dataset_id, copy.params["from_dataset_id"]) == (TARGET, "src")


def test_plain_kinds_store_the_import_body() -> None:
    cases: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "explorer": ({"events": ["e1", "e2", "e1"]}, {"completion_event_ids": ["e1", "e2"]}),
        "file": ({"file_id": "file-1"}, {"file_id": "file-1"}),
        "playground": ({"conversations": ["conv_1"]}, {"conversation_ids": ["conv_1"]}),
        "dataset": ({"records": [SOURCE.upper()]}, {"dataset_record_ids": [SOURCE]}),
        "spans": (
            {"spans": ["t1:s1", {"trace_id": "t1", "span_id": "s1"}], "mapping": "input=span_attributes:gen_ai.prompt"},
            {
                "span_references": [{"trace_id": "t1", "span_id": "s1"}],
                "mapping_contract": {"mappings": [{"target_field": "input", "source_field": {
                    "namespace": "span_attributes", "key": "gen_ai.prompt"}}], "version": 1},
            },
        ),
    }
    for kind, (options, params) in cases.items():
        definition = build_definition("x", kind=kind, dataset=TARGET, every="1m", options=options)
        assert (definition.kind, definition.params) == (ScheduleKind.PLAIN, params)


def test_filters_are_checked_and_a_whole_payload_is_unwrapped() -> None:
    group = {"AND": [{"field": "a", "op": "eq", "value": 1}, {"OR": [{"field": "b", "op": "isnull", "value": True}]}]}
    assert check_filter(group) == group
    assert check_filter({"filters": group}) == group
    with pytest.raises(InvalidSchedule, match=r"filter.AND\[1\].OR\[0\].op 'is' is not one of"):
        bad = {"field": "b", "op": "is", "value": 0}
        check_filter({"AND": [{"field": "a", "op": "eq", "value": 1}, {"OR": [bad]}]})
    with pytest.raises(InvalidSchedule, match="got keys"):
        check_filter({"field": "a", "value": 1})


# --- syncing the file -------------------------------------------------------------------------------------------


def test_sync_adds_updates_and_removes_file_schedules_keeping_their_state(harness: Harness) -> None:
    report = sync_schedule_file(harness.sessions, parse_schedules(EXAMPLE), now=NOW, path=FILE_A)
    assert sorted(report.added) == ["hourly-review", "mirror", "review-when-done", "support-events"]
    with harness.sessions() as session:
        rows = {schedule.name: schedule for schedule in list_schedules(session)}
        assert {row.source for row in rows.values()} == {ScheduleSource.FILE}
        assert rows["mirror"].paused and not rows["hourly-review"].paused
        assert rows["support-events"].watermark == datetime(2026, 1, 1, tzinfo=UTC)
        # Pausing from the command line survives later syncs of the file.
        set_paused(session, "hourly-review", True, now=NOW)
        session.commit()

    # The same file again: nothing to do.
    again = sync_schedule_file(harness.sessions, parse_schedules(EXAMPLE), now=at(10), path=FILE_A)
    assert not again.changed

    harness.api.events = {"e-1": datetime(2026, 1, 1, 0, 5, tzinfo=UTC)}
    assert fire(harness.context, "support-events", at(60)).outcome.value == "submitted"

    edited = EXAMPLE.replace('every = "1h"', 'every = "2h"').replace("chunk_size = 200", "chunk_size = 50")
    edited = edited[: edited.index("[schedules.mirror]")]
    report = sync_schedule_file(harness.sessions, parse_schedules(edited), now=at(20), path=FILE_A)
    assert (sorted(report.updated), report.removed) == (["hourly-review", "support-events"], ["mirror"])
    with harness.sessions() as session:
        hourly = get_schedule(session, "hourly-review")
        window = get_schedule(session, "support-events")
        assert hourly is not None and (hourly.every_s, hourly.paused) == (7200, True)
        assert window is not None and window.params["chunk_size"] == 50
        assert window.watermark == at(60)  # progress kept across the edit
        mirror = get_schedule(session, "mirror")
        assert mirror is not None and mirror.removed_at == at(20)  # removed, its history kept
        assert "mirror" not in [schedule.name for schedule in list_schedules(session)]


def test_file_schedules_cannot_be_removed_from_the_command_line_and_names_do_not_clash(harness: Harness) -> None:
    sync_schedule_file(harness.sessions, parse_schedules(EXAMPLE), now=NOW, path=FILE_A)
    with harness.sessions() as session, pytest.raises(FileScheduleError, match="edit the file to remove it"):
        remove_schedule(session, "mirror", now=NOW)
    harness.add("cli-made", "campaign", every="1h", campaign=CAMPAIGN)
    with pytest.raises(ScheduleExistsError, match="defined in the schedules file"):
        harness.add("mirror", "campaign", every="1h", campaign=CAMPAIGN)
    clashing = EXAMPLE + f'\n[schedules.cli-made]\nevery = "1m"\nkind = "file"\ndataset = "{TARGET}"\nfile_id = "f"\n'
    report = sync_schedule_file(harness.sessions, parse_schedules(clashing), now=at(5), path=FILE_A)
    assert report.conflicts == ["cli-made"]
    with harness.sessions() as session:
        kept = get_schedule(session, "cli-made")
        assert kept is not None and (kept.source, kept.import_kind) == (ScheduleSource.CLI, ImportKind.CAMPAIGN)


def test_the_watcher_syncs_only_when_the_content_changes(harness: Harness, tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text(EXAMPLE)
    watcher = FileWatcher(path)
    first = watcher.sync(harness.sessions, now=lambda: NOW)
    assert first is not None and len(first.added) == 4
    assert watcher.sync(harness.sessions, now=lambda: NOW) is None
    path.write_text("[schedules.x\n")
    with pytest.raises(ScheduleFileError):
        watcher.sync(harness.sessions, now=lambda: NOW)
    with harness.sessions() as session:  # a broken edit changes nothing
        assert len(list_schedules(session)) == 4
    path.write_text("")
    emptied = watcher.sync(harness.sessions, now=lambda: NOW)
    assert emptied is not None and len(emptied.removed) == 4


MIRROR_ONLY = f"""
[schedules.mirror]
every = "1h"
kind = "dataset-copy"
dataset = "{TARGET}"
from_dataset = "{SOURCE}"
"""

HOURLY_ONLY = f"""
[schedules.hourly-review]
every = "1h"
kind = "campaign"
dataset = "{TARGET}"
campaign = "{CAMPAIGN}"
"""


def _mirror_items(harness: Harness) -> list[str]:
    with harness.sessions() as session:
        query = select(ScheduleItem.item_id).join(Schedule).where(Schedule.name == "mirror")
        return sorted(session.scalars(query))


def test_two_beats_reading_different_files_never_remove_each_others_schedules(harness: Harness) -> None:
    harness.api.records = ["r-1", "r-2"]
    assert sync_schedule_file(harness.sessions, parse_schedules(MIRROR_ONLY), now=NOW, path=FILE_A).added == ["mirror"]
    assert fire(harness.context, "mirror", at(3600)).outcome.value == "submitted"
    assert _mirror_items(harness) == ["r-1", "r-2"]

    # The other beat's file does not have "mirror": its sync leaves it alone, and back and forth changes nothing.
    for moment in (10, 20, 30):
        other = sync_schedule_file(harness.sessions, parse_schedules(HOURLY_ONLY), now=at(moment), path=FILE_B)
        ours = sync_schedule_file(harness.sessions, parse_schedules(MIRROR_ONLY), now=at(moment + 1), path=FILE_A)
        assert other.removed == [] and ours.removed == [] and not ours.changed
    with harness.sessions() as session:
        names = {schedule.name: schedule.source_file for schedule in list_schedules(session)}
    assert names == {"mirror": str(FILE_A), "hourly-review": str(FILE_B)}
    assert _mirror_items(harness) == ["r-1", "r-2"]
    harness.api.records.append("r-3")
    copied = fire(harness.context, "mirror", at(7200))
    assert len(copied.job_ids) == 1 and _mirror_items(harness) == ["r-1", "r-2", "r-3"]

    # A name both files define belongs to the first: the second is told, and changes nothing.
    clash = sync_schedule_file(
        harness.sessions, parse_schedules(HOURLY_ONLY + MIRROR_ONLY.replace('"1h"', '"2h"')), now=at(40), path=FILE_B
    )
    assert clash.foreign == ["mirror"] and not clash.changed
    with harness.sessions() as session:
        mirror = get_schedule(session, "mirror")
        assert mirror is not None and mirror.every_s == 3600


def test_a_schedule_removed_from_its_file_comes_back_with_its_imported_items(harness: Harness) -> None:
    harness.api.records = ["r-1"]
    sync_schedule_file(harness.sessions, parse_schedules(MIRROR_ONLY), now=NOW, path=FILE_A)
    fire(harness.context, "mirror", at(3600))
    emptied = sync_schedule_file(harness.sessions, parse_schedules(""), now=at(10), path=FILE_A)
    assert emptied.removed == ["mirror"]
    assert fire(harness.context, "mirror", at(7200)).outcome.value == "unknown"
    back = sync_schedule_file(harness.sessions, parse_schedules(MIRROR_ONLY), now=at(20), path=FILE_A)
    assert back.added == ["mirror"]
    assert fire(harness.context, "mirror", at(10800)).outcome.value == "empty"  # r-1 is not copied again
    assert _mirror_items(harness) == ["r-1"]


def test_removal_keeps_history_unless_forgotten(harness: Harness) -> None:
    harness.api.records = ["r-1"]
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE)
    fire(harness.context, "mirror", at(3600))
    with harness.sessions() as session:
        remove_schedule(session, "mirror", now=at(3700))
        session.commit()
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE)  # re-added: the same list
    assert fire(harness.context, "mirror", at(7200)).outcome.value == "empty"
    with harness.sessions() as session:
        remove_schedule(session, "mirror", now=at(7300), forget=True)
        session.commit()
        assert get_schedule(session, "mirror") is None
    harness.add("mirror", "dataset-copy", every="1h", from_dataset=SOURCE)
    assert fire(harness.context, "mirror", at(10800)).outcome.value == "submitted"  # forgotten: copied again
