"""Stories about the scheduler registry: registering by name, finding a scheduler, listing names and loading plugins
from a .py file or a module, each error a one-line message with its key or source."""

import importlib.util
import json
import textwrap
import uuid

import pytest

from accelsim import AccelsimError, Schedule, Scheduler, registry
from accelsim.registry import get_scheduler, load_plugin, register, scheduler_names


class Quiet(Scheduler):
    """A scheduler that puts nothing anywhere; only its name matters here."""

    def schedule(self, graph, chip, costs):
        return Schedule([], [], self.name)


@pytest.fixture
def only(monkeypatch):
    """Run against a registry holding only the classes given, so the built-ins and other tests stay out of it."""

    def install(*classes):
        monkeypatch.setattr(registry, "SCHEDULERS", {cls.name: cls for cls in classes})
        return registry.SCHEDULERS

    return install


def named(name):
    return type(f"S_{name.replace('-', '_')}", (Quiet,), {"name": name})


def test_register_makes_a_class_available_by_its_name_and_returns_it(only):
    known = only()
    cls = named("mine")
    assert register(cls) is cls
    assert known == {"mine": cls}
    assert scheduler_names() == ["mine"]


def test_the_same_definition_registered_again_replaces_itself(only):
    old, new = named("same"), named("same")  # one definition run twice: a plugin file loaded again
    known = only(old)
    register(new)
    assert known == {"same": new}


def test_a_different_class_under_a_registered_name_is_refused_naming_both(only):
    class Shadow(Quiet):
        name = "heft"

    built_in = named("heft")
    known = only(built_in)
    with pytest.raises(AccelsimError) as info:
        register(Shadow)
    shadow = f"{__name__}.test_a_different_class_under_a_registered_name_is_refused_naming_both.<locals>.Shadow"
    assert str(info.value) == (
        f"{shadow}: scheduler name 'heft' is already registered by {built_in.__module__}.S_heft; choose another name"
    )
    assert known == {"heft": built_in}


def test_a_plugin_cannot_shadow_a_built_in_scheduler(tmp_path):
    path = tmp_path / "shadow.py"
    path.write_text(PLUGIN.format(name="heft"))
    with pytest.raises(AccelsimError) as info:
        load_plugin(str(path))
    assert str(info.value) == (
        f"{path}: shadow.Plugged: scheduler name 'heft' is already registered by accelsim.policies.heft.Heft; "
        "choose another name"
    )
    assert get_scheduler("heft").__class__.__module__ == "accelsim.policies.heft"


def test_a_scheduler_class_without_a_name_is_refused(only):
    known = only()

    class Nameless(Quiet):
        pass

    with pytest.raises(AccelsimError) as info:
        register(Nameless)
    assert info.value.detail == "a scheduler class needs a non-empty `name`"
    assert info.value.key == ("test_a_scheduler_class_without_a_name_is_refused.<locals>.Nameless")
    assert info.value.source is None
    assert known == {}


def test_the_default_scheduler_is_a_registered_one_and_what_run_and_the_cli_use(tiny_chip, capsys):
    from accelsim import TaskGraph, make_task, run
    from accelsim.cli import main

    assert get_scheduler(registry.DEFAULT_SCHEDULER).name == registry.DEFAULT_SCHEDULER
    graph = TaskGraph([make_task("a", "add", [8])])
    assert run(tiny_chip, graph).scheduler == registry.DEFAULT_SCHEDULER
    assert main(["run", "--chip", "gaudi1", "--workload", "gpt2-small", "--set", "layers=1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scheduler"] == registry.DEFAULT_SCHEDULER


def test_scheduler_names_are_sorted(only):
    only(named("zeta"), named("alpha"), named("mid"))
    assert scheduler_names() == ["alpha", "mid", "zeta"]


def test_get_scheduler_makes_a_fresh_instance_of_the_named_class(only):
    cls = named("fresh")
    only(cls)
    first, second = get_scheduler("fresh"), get_scheduler("fresh")
    assert type(first) is cls and type(second) is cls and first is not second


def test_get_scheduler_hands_back_an_instance_it_is_given(only):
    only()
    mine = named("unregistered")()
    assert get_scheduler(mine) is mine


def test_an_unknown_scheduler_name_lists_the_registered_ones(only):
    only(named("zeta"), named("alpha"))
    with pytest.raises(AccelsimError) as info:
        get_scheduler("beta")
    assert str(info.value) == "scheduler: unknown scheduler 'beta'; registered: alpha, zeta"
    assert info.value.key == "scheduler" and info.value.source is None


def test_the_built_in_schedulers_are_registered():
    assert {"naive", "first-free", "heft", "balanced"} <= set(scheduler_names())


# --- plugins -----------------------------------------------------------------------------------------------------

PLUGIN = textwrap.dedent("""
    from accelsim import Schedule, Scheduler, register

    @register
    class Plugged(Scheduler):
        name = "{name}"

        def schedule(self, graph, chip, costs):
            return Schedule([], [], self.name)
""")


def test_a_plugin_file_registers_its_schedulers_under_the_files_name(only, tmp_path):
    known = only()
    path = tmp_path / "my_policy.py"
    path.write_text(PLUGIN.format(name="from-file"))
    load_plugin(str(path))
    assert list(known) == ["from-file"]
    assert known["from-file"].__module__ == "my_policy"


def test_a_missing_plugin_file_is_reported_with_its_path(only, tmp_path):
    only()
    missing = str(tmp_path / "nowhere.py")
    with pytest.raises(AccelsimError) as info:
        load_plugin(missing)
    assert str(info.value) == f"{missing}: plugin file not found"
    assert info.value.source == missing and info.value.key is None


def test_a_plugin_file_python_finds_no_loader_for_is_reported(only, tmp_path, monkeypatch):
    only()
    path = tmp_path / "odd.py"
    path.write_text("")
    monkeypatch.setattr(importlib.util, "spec_from_file_location", lambda name, location: None)
    with pytest.raises(AccelsimError) as info:
        load_plugin(str(path))
    assert str(info.value) == f"{path}: cannot load this file as a Python module"
    assert info.value.source == str(path) and info.value.key is None


def test_a_plugin_spec_without_a_loader_is_reported(only, tmp_path, monkeypatch):
    only()
    path = tmp_path / "odd.py"
    path.write_text("")
    spec = importlib.util.spec_from_file_location("odd", path)
    spec.loader = None
    monkeypatch.setattr(importlib.util, "spec_from_file_location", lambda name, location: spec)
    with pytest.raises(AccelsimError) as info:
        load_plugin(str(path))
    assert info.value.detail == "cannot load this file as a Python module"


def test_a_plugin_module_is_imported_by_its_dotted_name(only, tmp_path, monkeypatch):
    known = only()
    team = f"team_policies_{uuid.uuid4().hex}"  # a new package each time: Python imports a module only once
    package = tmp_path / team
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fast.py").write_text(PLUGIN.format(name="from-module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugin(f"{team}.fast")
    assert list(known) == ["from-module"]
    assert known["from-module"].__module__ == f"{team}.fast"


def test_a_plugin_module_that_shadows_a_scheduler_is_refused_naming_the_module(only, tmp_path, monkeypatch):
    built_in = named("heft")
    known = only(built_in)
    team = f"team_policies_{uuid.uuid4().hex}"
    package = tmp_path / team
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "shadow.py").write_text(PLUGIN.format(name="heft"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AccelsimError) as info:
        load_plugin(f"{team}.shadow")
    refused = f"scheduler name 'heft' is already registered by {built_in.__module__}.S_heft; choose another name"
    assert str(info.value) == f"{team}.shadow: {team}.shadow.Plugged: {refused}"
    assert info.value.source == f"{team}.shadow" and info.value.key == f"{team}.shadow.Plugged"
    assert info.value.detail == refused
    assert known == {"heft": built_in}


def test_a_missing_plugin_module_is_reported_with_pythons_reason(only):
    only()
    with pytest.raises(AccelsimError) as info:
        load_plugin("no_such_policy_module")
    assert str(info.value) == (
        "no_such_policy_module: cannot import plugin module (No module named 'no_such_policy_module')"
    )
    assert info.value.source == "no_such_policy_module" and info.value.key is None
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize("spec", ["", "+8", ".relative", "a..b", "my-policy", "9lives"])
def test_a_plugin_spec_that_is_no_module_name_is_refused_naming_the_option(only, spec):
    """Old code: ``--plugin=`` raised ValueError (Empty module name) and ``--plugin=.x`` TypeError, out of
    importlib (found by tests/test_fuzz.py's command-line cases)."""
    only()
    with pytest.raises(AccelsimError) as info:
        load_plugin(spec)
    assert str(info.value) == f"--plugin: not a module name (dotted, e.g. my.plugin) nor a .py file: {spec!r}"
