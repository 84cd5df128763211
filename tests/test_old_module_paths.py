"""The flat module paths of earlier versions (``optarena.methods.cmaes``, ...) still import: as
the very module at the new path, with a DeprecationWarning that names it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import optarena.methods as _pkg_init  # noqa: F401  (installs the finder of old paths)
from optarena.methods import MOVED, method_modules

PKG = "optarena.methods"


def _forget(old: str) -> None:
    """Drop an alias an earlier import made, so the next import goes through the finder."""
    sys.modules.pop(f"{PKG}.{old}", None)
    if old in vars(sys.modules[PKG]):
        delattr(sys.modules[PKG], old)


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_old_path_imports_the_new_module_with_a_warning(old: str, new: str) -> None:
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"{PKG}\.{old} has moved to {PKG}\.{new}"):
        module = importlib.import_module(f"{PKG}.{old}")
    real = importlib.import_module(f"{PKG}.{new}")
    assert module is real  # nothing ran or registered twice
    assert real.__spec__.name == f"{PKG}.{new}"  # the alias did not rename the real module
    assert real.__name__ == f"{PKG}.{new}"


def test_every_moved_path_points_at_a_method_module() -> None:
    assert set(MOVED.values()) <= set(method_modules())
    assert not set(MOVED) & set(method_modules())  # an old name never hides a real module


def test_from_old_path_import_name_and_statement_forms() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "try:\n"
        "    import optarena.methods.cmaes\n"
        "except DeprecationWarning as w:\n"
        "    assert 'optarena.methods.population.cmaes' in str(w), w\n"
        "else:\n"
        "    raise SystemExit('no DeprecationWarning')\n"
        "warnings.simplefilter('ignore')\n"
        "import optarena.methods.cmaes\n"
        "from optarena.methods.hybrid import Chain\n"
        "from optarena.methods import scipy_local\n"
        "from optarena.methods.composite.chain import Chain as C2\n"
        "real = sys.modules['optarena.methods.population.cmaes']\n"
        "assert Chain is C2\n"
        "assert sys.modules['optarena.methods.cmaes'] is real\n"
        "assert scipy_local is sys.modules['optarena.methods.scipy.local']\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr


def test_unknown_path_is_still_module_not_found() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"optarena\.methods\.no_such_method"):
        importlib.import_module(f"{PKG}.no_such_method")


def test_methods_is_the_package_and_the_listing() -> None:
    """``optarena.methods`` lists the methods when called and is the package when imported
    (a plain function of that name used to hide the package from ``import ... as``)."""
    import importlib
    import subprocess
    import sys

    import optarena
    from optarena.methods import method_infos

    assert [i.name for i in optarena.methods()] == [i.name for i in method_infos()]
    assert importlib.import_module("optarena.methods") is optarena.methods
    code = "import optarena.methods.population.cmaes as c; print(c.CMAES.info.name)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "cmaes"


def test_methods_called_with_a_name_gives_that_methods_info_and_options() -> None:
    import optarena

    info = optarena.methods("L-BFGS-B")  # minimize's spellings
    assert info.name == "lbfgsb"
    cma = optarena.methods("cmaes")
    assert cma is optarena.methods()[[i.name for i in optarena.methods()].index("cmaes")]
    assert {"sigma0", "popsize", "restarts"} <= {p.name for p in cma.options}
    with pytest.raises(ValueError, match="Did you mean 'cmaes'"):
        optarena.methods("cmaez")
