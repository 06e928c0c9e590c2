"""infra/requirements.lock pins exactly pyproject.toml's runtime dependencies, hashed, for the template's runtime.

Offline: these read files only. `test_infra_artifact.py` builds the artifact from the lock and checks the result.
Regenerate the lock with `make -f infra/Makefile lock` (see infra/README.md).
"""

from __future__ import annotations

import re
from typing import Any

from lambda_artifact import (
    LOCK_PATH,
    OUR_PACKAGES,
    PROJECT_ROOT_VIA,
    lambda_runtime,
    lock_command,
    makefile_recipe,
    makefile_variables,
    option,
    pyproject,
    read_lock,
    runtime_requirements,
)
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REGENERATE = "regenerate it: make -f infra/Makefile lock"


def test_lock_pins_every_runtime_dependency_inside_its_declared_range() -> None:
    pins = read_lock()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK_PATH.name}: {REGENERATE}"
        version = pins[name].version
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{LOCK_PATH.name} pins {name}=={version}, outside pyproject.toml's {requirement}: {REGENERATE}"
        )


def test_lock_holds_the_runtime_dependencies_and_what_they_require_nothing_else() -> None:
    """By the lock's own `# via` lines: the pins the project requires directly are pyproject.toml's runtime
    dependencies (no dev extra, no leftover of a removed dependency), and every other pin is required by a pin."""
    pins = read_lock()
    direct = {name for name, pin in pins.items() if PROJECT_ROOT_VIA in pin.required_by}
    assert direct == {canonicalize_name(r.name) for r in runtime_requirements()}, REGENERATE
    for pin in pins.values():
        requirers = pin.required_by - {PROJECT_ROOT_VIA}
        assert pin.required_by, f"{pin.name} is pinned but nothing requires it: {REGENERATE}"
        assert requirers <= set(pins), f"{pin.name} is required by {sorted(requirers - set(pins))}, not pinned"
    dev = {canonicalize_name(Requirement(text).name) for text in pyproject()["project"]["optional-dependencies"]["dev"]}
    # boto3 is a dev extra and, through aiobotocore[boto3], a runtime dependency; a dev tool would be direct.
    assert not dev & direct, f"development extras in the lock: {sorted(dev & direct)}"


def test_every_pin_is_exact_and_hashed() -> None:
    pins = read_lock()  # asserts `name==version` with sha256 hashes and nothing else, for every entry
    assert pins
    for pin in pins.values():
        assert pin.hashes, pin.name
        assert len(set(pin.hashes)) == len(pin.hashes), f"{pin.name}: a hash listed twice"


def test_lock_is_resolved_for_the_template_runtime(template: dict[str, Any]) -> None:
    python_version, machine = lambda_runtime(template)
    command = lock_command()
    assert command[:4] == ["uv", "pip", "compile", "pyproject.toml"], command
    assert "--generate-hashes" in command
    assert option(command, "--python-version") == python_version
    assert option(command, "--only-binary") == ":all:"
    assert option(command, "--output-file") == "infra/requirements.lock"
    variables = makefile_variables()
    assert option(command, "--python-platform") == variables["UV_PLATFORM"]
    assert variables["UV_PLATFORM"].startswith(f"{machine}-manylinux"), variables["UV_PLATFORM"]
    # The build downloads the wheels for the same target the lock was resolved for.
    assert variables["LAMBDA_PYTHON_VERSION"] == python_version
    assert variables["LAMBDA_PLATFORM"] == f"{variables['UV_PLATFORM'].partition('-')[2]}_{machine}"


def test_build_installs_exactly_the_lock_and_our_packages() -> None:
    variables = makefile_variables()
    assert variables["LOCK"] == "$(INFRA_DIR)/requirements.lock"
    recipe = makefile_recipe("artifact")
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", '--requirement "$(LOCK)"', "--no-compile"):
        assert flag in recipe, f"the artifact recipe lacks {flag}"
    assert "pyproject" not in recipe, "the build must not resolve pyproject.toml's ranges: it installs the lock"
    copied = re.search(r"cp -R ([\w ]+) ", recipe)
    assert copied, recipe
    assert copied.group(1).split() == list(OUR_PACKAGES)
