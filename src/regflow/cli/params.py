"""CLI options derived from the parameter models, so each option is declared once (schemas).

typer reads a command's options from its signature; this builds that signature from the
pydantic fields: name, type, default, help and choices. Bounds are not repeated here: the
parsed values go through the same pydantic model the flow uses, and its errors come back as
one usage error (exit 2) naming each bad option.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from regflow.schemas.params import (
    ParamsModel,
    field_label,
    flat_index,
    flat_name,
    parameter_error,
    sections,
)

M = TypeVar("M", bound=ParamsModel)


def _cli_name(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    return str(extra["cli"]) if isinstance(extra, dict) and "cli" in extra else None


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return annotation, False


def _option(flat: str, info: FieldInfo, panel: str) -> tuple[Any, Any]:
    """(annotation, default) of one typer parameter for a model field."""
    base, optional = _unwrap_optional(info.annotation)
    cli = _cli_name(info)
    help_text = info.description or ""
    default = None if info.is_required() else info.default
    if cli is not None and not cli.startswith("-"):
        # str | list[str] (train's DATA): one or more paths, as the shell expands a glob.
        many = any(typing.get_origin(kind) is list for kind in typing.get_args(base))
        argument = typer.Argument(metavar=cli, help=help_text, show_default=False)
        return Annotated[list[str] if many else str, argument], inspect.Parameter.empty
    flag = cli or "--" + flat.replace("_", "-")
    common: dict[str, Any] = {"help": help_text, "rich_help_panel": panel}
    if base is bool:
        return Annotated[bool, typer.Option(flag, **common)], default
    if typing.get_origin(base) is Literal:  # typer shows and checks the choices
        return Annotated[base | None if optional else base, typer.Option(flag, **common)], default
    if typing.get_origin(base) is list:  # list[str]: comma-separated on the command line
        return Annotated[str | None, typer.Option(flag, metavar="A,B,...", **common)], None
    kind = base if base in (str, int, float) else str
    return Annotated[kind | None if optional else kind, typer.Option(flag, **common)], default


def model_parameters(params: type[ParamsModel]) -> list[inspect.Parameter]:
    """One typer parameter per field of every section, named by its flat name."""
    out: list[inspect.Parameter] = []
    for section, model in sections(params).items():
        panel = (model.__doc__ or section).strip().splitlines()[0]
        for name, info in model.model_fields.items():
            flat = flat_name(section, name)
            title = f"{section.title()}: {panel}" if section else "Options"
            annotation, default = _option(flat, info, title)
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
            out.append(inspect.Parameter(flat, kind, annotation=annotation, default=default))
    # Arguments first: a positional parameter may not follow options with defaults.
    return sorted(out, key=lambda p: p.default is not inspect.Parameter.empty)


def with_model_options(
    params: type[ParamsModel], extra: list[inspect.Parameter]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give `command` a signature of the model's options plus `extra` (e.g. --json)."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        parameters = [*model_parameters(params), *extra]
        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        return command

    return decorate


def parse_model(params: type[M], values: dict[str, Any]) -> M:
    """The model from parsed option values; bad values are one usage error naming the options."""
    index = flat_index(params)
    flat = {
        key: _split_list(value) if _is_list(params, index[key]) else _one_or_many(value)
        for key, value in values.items()
    }
    try:
        return params.from_flat(flat)
    except ValidationError as err:
        raise parameter_error(err, lambda loc: option_label(params, loc)) from None


def option_label(params: type[ParamsModel], loc: tuple[Any, ...]) -> str:
    """The option (or argument) a validation error's location stands for."""
    if "" in sections(params):
        loc = ("", *loc)
    if len(loc) < 2 or str(loc[0]) not in sections(params):
        return field_label(loc)
    section, name = str(loc[0]), str(loc[1])
    info = sections(params)[section].model_fields.get(name)
    cli = _cli_name(info) if info is not None else None
    return cli or "--" + flat_name(section, name).replace("_", "-")


def _is_list(params: type[ParamsModel], where: tuple[str, str]) -> bool:
    section, name = where
    base, _ = _unwrap_optional(sections(params)[section].model_fields[name].annotation)
    return typing.get_origin(base) is list


def _one_or_many(value: Any) -> Any:
    """A variadic argument's values: one path stays a path, several are a list."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]
