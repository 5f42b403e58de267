"""The per-kind subcommands of ``dsimport import``, ``dsimport messages send`` and ``dsimport schedules add``, built
from the import kinds' entries (:mod:`import_kinds`): one subcommand per kind, its options and help, and what the
options given become (the import's body, or the schedule's options).

An option is required when it alone gives its field; a field that several options give takes exactly one of them.
An option with a resolver (``--path``, ``--from-dataset``) is resolved here, before anything is requested; such an
option is not offered by ``schedules add`` (a schedule's body is fixed when it is made), unless it is there only
to say what to do instead. An option whose value is a search (``--filter``) is offered by ``dsimport import`` alone,
which runs the search and requests what it finds (:mod:`cli.filter_import`); ``kind_commands``' ``extra`` adds the
search's own options (``--dry-run``, ``--since``, ...) to the kinds that have one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import DATASET, UUID, records_of_dataset, upload_file
from import_kinds import IMPORT_KINDS, BodyError, BodyField, CommandGroup, ImportKindSpec, Option, Resolver

if TYPE_CHECKING:
    from worker.settings import Settings

__all__ = ["KindCallback", "chosen_search", "fixed_params", "kind_commands", "schedule_options", "source_params"]

KindCallback = Callable[[ImportKindSpec, dict[str, Any]], None]
"""What a kind's subcommand does with its entry and every parsed value (the group's own and the kind's)."""


def kind_commands(
    group: CommandGroup,
    common: Callable[[], Sequence[click.Parameter]],
    callback: KindCallback,
    extra: Callable[[ImportKindSpec], Sequence[click.Parameter]] | None = None,
) -> list[click.Command]:
    """One subcommand per import kind for ``group``: ``common()`` parameters first, then the kind's options, then
    ``extra(spec)`` (the options of a kind's search, for instance)."""
    return [_command(spec, group, common, callback, extra) for spec in IMPORT_KINDS.values()]


def _command(
    spec: ImportKindSpec,
    group: CommandGroup,
    common: Callable[[], Sequence[click.Parameter]],
    callback: KindCallback,
    extra: Callable[[ImportKindSpec], Sequence[click.Parameter]] | None,
) -> click.Command:
    def run(**values: Any) -> None:
        callback(spec, values)

    params = [*common(), *(_click_option(spec, option, group) for option in _offered(spec, group))]
    if extra is not None:
        params += extra(spec)
    return click.Command(spec.name, callback=run, params=params, help=spec.help[group])


def _offered(spec: ImportKindSpec, group: CommandGroup) -> list[Option]:
    if group is CommandGroup.IMPORT:
        return list(spec.options)
    if group is CommandGroup.SEND:
        return [option for option in spec.options if option.resolver is None or not option.resolver.searches]
    return [option for option in spec.options if option.resolver is None or option.schedule_refusal is not None]


def _click_option(spec: ImportKindSpec, option: Option, group: CommandGroup) -> click.Option:
    body_field = spec.body_field(option.field)
    offered = [other for other in _offered(spec, group) if other.field == option.field]
    repeatable = option.resolver is None and body_field.shape.repeatable
    value = option.resolver.option_value if option.resolver is not None else body_field.shape.option_value
    param_type: click.ParamType[Any, Any]
    if value == "uuid":
        param_type = UUID
    elif value == "dataset":
        param_type = DATASET
    elif value == "path":
        param_type = click.Path(dir_okay=False, path_type=Path)
    else:
        param_type = click.STRING
    extra: dict[str, Any] = {} if repeatable or len(offered) == 1 else {"default": None}
    return click.Option(
        [option.flag, option.dest],
        type=param_type,
        multiple=repeatable,
        required=len(offered) == 1,
        help=option.help_for(group),
        **extra,
    )


def _given(value: Any) -> bool:
    return value is not None and value != ()


def _one_of_message(options: Sequence[Option], spec: ImportKindSpec) -> str:
    """What to give when a field is given by none or several of its options."""
    if len(options) == 1:
        return f"give {_describe(options[0], spec)}"
    if any(_repeatable(option, spec) for option in options):
        return "give " + " or ".join(_describe(option, spec) for option in options) + ", not both"
    return "give exactly one of " + " and ".join(option.flag for option in options)


def _repeatable(option: Option, spec: ImportKindSpec) -> bool:
    return option.resolver is None and spec.body_field(option.field).shape.repeatable


def _describe(option: Option, spec: ImportKindSpec) -> str:
    return f"{option.flag} (one or more)" if _repeatable(option, spec) else option.flag


def _chosen(spec: ImportKindSpec, options: Sequence[Option], values: dict[str, Any]) -> Option:
    # Only the options this command offers have a value (``messages send`` offers no search).
    options = [option for option in options if option.dest in values]
    given = [option for option in options if _given(values[option.dest])]
    if len(given) != 1:
        raise click.UsageError(_one_of_message(options, spec))
    return given[0]


def source_params(spec: ImportKindSpec, values: dict[str, Any], settings: Callable[[], Settings]) -> dict[str, Any]:
    """The import's body from the options given (``dsimport import`` and ``messages send``), resolved: a file
    uploaded, a dataset listed. ``settings`` is called only when a resolver needs them. A search (``--filter``)
    is not resolved here: see :func:`chosen_search`."""
    return {body_field.name: _field_value(spec, body_field, values, settings) for body_field in spec.fields}


def chosen_search(spec: ImportKindSpec, values: dict[str, Any]) -> Option | None:
    """The search option (``--filter``) when it is the one given for the kind's items; None when another is.

    :raises click.UsageError: the items are given by none or by several of their options (``--event`` and
        ``--filter`` together).
    """
    search = spec.search_option
    if search is None:
        return None
    chosen = _chosen(spec, spec.options_of(search.field), values)
    return chosen if chosen is search else None


def fixed_params(spec: ImportKindSpec, values: dict[str, Any], settings: Callable[[], Settings]) -> dict[str, Any]:
    """The body's fields other than its items (a spans import's mapping contract), the same in every chunk of a
    searched import."""
    item_field = spec.item_field
    return {
        body_field.name: _field_value(spec, body_field, values, settings)
        for body_field in spec.fields
        if item_field is None or body_field.name != item_field.name
    }


def _field_value(
    spec: ImportKindSpec, body_field: BodyField, values: dict[str, Any], settings: Callable[[], Settings]
) -> Any:
    option = _chosen(spec, spec.options_of(body_field.name), values)
    value = values[option.dest]
    if option.resolver is Resolver.UPLOAD_FILE:
        return upload_file(settings(), value, param_hint=option.flag)
    if option.resolver is Resolver.RECORDS_OF_DATASET:
        return records_of_dataset(settings(), value)
    if option.resolver is not None:
        raise ValueError(f"{option.flag} is a search: the command that offers it runs it (chosen_search)")
    try:
        return body_field.shape.from_cli(value)
    except BodyError as exc:
        raise click.BadParameter(str(exc), param_hint=option.flag) from None


def schedule_options(spec: ImportKindSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The schedule's options from the options given (``schedules add``), under the names of the schedules file;
    :func:`triggers.schedules.specs.build_definition` checks them."""
    options: dict[str, Any] = {}
    for body_field in spec.fields:
        offered = [option for option in _offered(spec, CommandGroup.SCHEDULE) if option.field == body_field.name]
        for option in offered:
            if option.schedule_refusal is not None and _given(values[option.dest]):
                raise click.UsageError(option.schedule_refusal.reason)
        usable = [option for option in offered if option.schedule_refusal is None]
        option = _chosen(spec, usable, values)
        value = values[option.dest]
        options[body_field.schedule_key] = list(value) if isinstance(value, tuple) else value
    return options
