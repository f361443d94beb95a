"""Finding the `App` in a file or module named on the command line."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType

from streamcore.base.errors import ConfigError
from streamcore.dataflow.app import App


def _import_file(path: Path) -> ModuleType:
    package = path.resolve().parent
    if (package / "__init__.py").is_file():  # a module of a package (it may import its siblings)
        parts = [path.stem]
        while (package / "__init__.py").is_file():
            parts.insert(0, package.name)
            package = package.parent
        if str(package) not in sys.path:
            sys.path.insert(0, str(package))
        return importlib.import_module(".".join(parts))
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = f"streamcore_app_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError("app", f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_app(target: str) -> App:
    """Load ``path/to/app.py``, ``package.module`` or either with ``:attribute``.

    Without an attribute, the module's ``app`` is used, or its only `App` instance.
    """
    location, _, attribute = target.partition(":")
    try:
        if location.endswith(".py") or Path(location).is_file():
            path = Path(location)
            if not path.is_file():
                raise ConfigError("app", f"no such file: {location}")
            module = _import_file(path)
        else:
            if str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            try:
                module = importlib.import_module(location)
            except ModuleNotFoundError as exc:
                raise ConfigError("app", f"cannot import {location!r}: {exc}") from exc
    except AppCodeError:
        raise
    except SyntaxError as exc:
        raise AppCodeError(_syntax_error(exc)) from None
    except Exception as exc:
        where = _user_frame(exc)
        if where is None:
            raise
        raise AppCodeError(f"{where}: {_message(exc)}") from None
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, App):
            raise ConfigError("app", f"{location}:{attribute} is not a streamcore App")
        return found
    if isinstance(getattr(module, "app", None), App):
        return module.app  # type: ignore[no-any-return]
    apps = [v for v in vars(module).values() if isinstance(v, App)]
    if len(apps) != 1:
        raise ConfigError("app", f"{target}: expected one App (or a variable named 'app'), found {len(apps)}")
    return apps[0]


class AppCodeError(ConfigError):
    """The app's own code failed while it was loaded: the message names its file and line."""

    def __init__(self, message: str) -> None:
        super().__init__("app", message)


def _syntax_error(exc: SyntaxError) -> str:
    where = f"{exc.filename}:{exc.lineno}"
    text = (exc.text or "").rstrip("\n")
    caret = "" if not text or exc.offset is None else "\n    " + text + "\n    " + " " * (exc.offset - 1) + "^"
    return f"{where}: {type(exc).__name__}: {exc.msg}{caret}"


def _user_frame(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of the traceback in the user's code: not streamcore,
    not the standard library or installed packages, not generated code (``<string>``)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith("<") or name.startswith(_NOT_USER_CODE):
            continue
        found = f"{name}:{frame.lineno}"
    return found


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"


_NOT_USER_CODE = (
    str(Path(__file__).resolve().parents[1]),  # streamcore
    str(Path(__file__).resolve().parents[2] / "operators"),  # operators/ of a source checkout
    *(sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")),  # Python, packages
)
