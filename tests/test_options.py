"""The command line from one description (accelsim.options): every option of every subcommand has help text, a
flag has one help (one meaning) in every command that takes it, prefixes are not taken for flags, and each retired
spelling is refused in one line naming its new spelling."""

import argparse
import json
from pathlib import Path

import pytest

from accelsim.cli import _parser, main
from accelsim.options import COMMANDS, OPTIONS, retired_flags

EXAMPLE = str(Path(__file__).parent.parent / "examples" / "attention_head.toml")
GENERATE = ["generate", "--chip", "gaudi2", "--model", "gpt2-xl", "--batch", "1", "--input-tokens", "8"]
GENERATE += ["--output-tokens", "2"]


def subparsers() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def options_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positionals a user gives (not -h, not the retired spellings' refusals)."""
    retired = retired_flags(parser)
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction) and not retired.intersection(a.option_strings)
    ]


def test_every_command_of_the_description_is_a_subcommand_and_nothing_else():
    assert set(subparsers()) == set(COMMANDS)


def test_every_option_of_every_subcommand_has_help_text():
    missing = [
        f"{name} {a.option_strings or a.dest}"
        for name, p in subparsers().items()
        for a in options_of(p)
        if not (a.help or "").strip() or a.help == argparse.SUPPRESS
    ]
    assert not missing, missing


def test_a_flag_has_one_help_and_one_reading_in_every_command_that_takes_it():
    seen: dict[str, tuple[str, object, object, object]] = {}
    for name, p in subparsers().items():
        for a in options_of(p):
            flag = a.option_strings[0] if a.option_strings else a.dest
            meaning = (a.help, a.type, a.choices, type(a).__name__)
            assert seen.setdefault(flag, meaning) == meaning, f"{name} {flag} differs from another command's"
            described = OPTIONS[flag if a.option_strings else {"action": "action"}.get(a.dest, a.dest)]
            assert a.help == described.help


def test_each_option_is_built_from_its_description_only():
    """A flag no command takes is dead text; every flag a parser has is in OPTIONS."""
    used = {f for p in subparsers().values() for a in options_of(p) for f in (a.option_strings or [a.dest])}
    assert used == set(OPTIONS)


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["compare", "--chip", "gaudi1", "--graph", EXAMPLE, "--schedulers", "naive,heft"],
            "--schedulers: is now --scheduler NAME,NAME",
        ),
        (["sweep", "--chip", "gaudi1", "--workload", "x", "--out", "o.csv", "--schedulers=naive"], "--schedulers:"),
        (["run", "--chip", "gaudi1", "--graph", EXAMPLE, "--schedulers", "naive"], "--schedulers:"),
        ([*GENERATE, "--cards", "2"], "--cards: is now --parallel tp=N"),
        ([*GENERATE, "--dtype", "fp8"], "--dtype: is now --precision bf16|fp8"),
        (
            ["train", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--global-batch", "8", "--dtype", "fp8"],
            "--dtype: is now --precision",
        ),
        (["plot", "--chip", "gaudi1", "--graph", EXAMPLE, "--out", "OUT", "--dtype=fp8"], "--dtype: is now"),
    ],
)
def test_a_retired_spelling_is_refused_with_its_new_one(argv, line, capsys, tmp_path):
    argv = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"accelsim: error: {line}")


@pytest.mark.parametrize("prefix", ["--sched", "--schedule", "--chi", "--work"])
def test_a_prefix_is_never_taken_for_a_flag(prefix, capsys):
    """Old code: argparse's prefix matching read ``--schedulers`` in run as ``--scheduler`` (and ``--sched``)."""
    argv = ["compare", "--chip", "gaudi1", "--graph", EXAMPLE, prefix, "naive"]
    if prefix in ("--chi", "--work"):
        argv = ["compare", prefix, "gaudi1", "--graph", EXAMPLE]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and prefix in err and "unrecognized" in err


def test_commands_that_run_one_scheduler_refuse_a_list(capsys):
    assert main(["run", "--chip", "gaudi1", "--graph", EXAMPLE, "--scheduler", "naive,heft"]) == 2
    err = capsys.readouterr().err
    assert err == "accelsim: error: --scheduler: this command runs one scheduler; got 2 (naive,heft)\n"


def test_generate_takes_tensor_parallelism_as_parallel_tp_and_nothing_else(capsys):
    assert main([*GENERATE, "--parallel", "tp=2,dp=2"]) == 2
    assert "--parallel: generate splits a model over a tensor group only" in capsys.readouterr().err
    # gpt2-xl's 25 heads do not divide over 2 cards: the degree reached the generation as its cards
    assert main([*GENERATE, "--parallel", "tp=2"]) == 2
    assert "25 attention heads do not divide into 2 equal shares" in capsys.readouterr().err


def test_generate_precision_is_the_recipe_and_refuses_trainings_own(capsys):
    assert main([*GENERATE, "--precision", "fp8", "--json"]) == 0
    fp8 = json.loads(capsys.readouterr().out)
    assert main([*GENERATE, "--json"]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert fp8["dtype"] == "fp8" and bf16["dtype"] == "bf16"
    assert main([*GENERATE, "--precision", "fp32"]) == 2
    assert capsys.readouterr().err == "accelsim: error: --precision: a generation runs bf16 or fp8, got 'fp32'\n"


def test_schedulers_json_lists_each_name_with_its_description(capsys):
    assert main(["schedulers", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main(["schedulers"]) == 0
    names = capsys.readouterr().out.split()
    assert [s["name"] for s in listed] == names and "heft" in names
    assert all(s["description"].strip() for s in listed)


def test_plot_json_lists_the_files_it_wrote(capsys, tmp_path):
    argv = ["plot", "--chip", "gaudi1", "--graph", EXAMPLE, "--scheduler", "naive", "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert files and all(Path(f).exists() for f in files)
    assert sorted(files) == sorted(str(p) for p in tmp_path.iterdir())
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == files


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_commands_help_prints_and_names_each_of_its_options(command, capsys):
    """argparse checks a help text's %-formatting and metavars only when it prints them."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    parser = subparsers()[command]
    for a in options_of(parser):
        assert (a.option_strings[0] if a.option_strings else (a.metavar or a.dest)) in out
    assert not retired_flags(parser).intersection(out.split())


def test_the_top_parser_and_each_subcommand_say_what_they_are(capsys):
    """`accelsim --help` names the program and lists every command with its help; a command's --help opens with its
    description (both from COMMANDS, the one description)."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: accelsim ")
    for name, command in COMMANDS.items():
        assert name in out
        with pytest.raises(SystemExit):
            main([name, "--help"])
        sub = capsys.readouterr().out
        assert sub.startswith(f"usage: accelsim {name} ")
        assert "".join(command.help.split()) in "".join(sub.split())  # argparse wraps it, breaking at hyphens too


def test_a_repeated_option_collects_afresh_on_every_parse():
    """--set appends: two parses of the same parser must not share one list (a default list mutated in place)."""
    parser = _parser()
    first = parser.parse_args(["run", "--chip", "gaudi1", "--graph", EXAMPLE, "--set", "batch=2"])
    second = parser.parse_args(["run", "--chip", "gaudi1", "--graph", EXAMPLE])
    assert first.set == ["batch=2"] and second.set == [] and first.set is not second.set
    assert second.plugin == [] and second.scheduler == "first-free"


def test_a_missing_required_option_or_group_is_one_line_naming_it(capsys):
    assert main(["generate", "--model", "gpt2-xl", "--batch", "1", "--input-tokens", "8", "--output-tokens", "2"]) == 2
    assert capsys.readouterr().err == "accelsim: error: the following arguments are required: --chip\n"
    assert main(["run", "--chip", "gaudi1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error: one of the arguments ") and "--workload" in err and err.count("\n") == 1


def test_one_scheduler_returns_the_name_and_refuses_none_or_several():
    from accelsim.errors import AccelsimError
    from accelsim.options import comma_list, one_scheduler

    assert one_scheduler(" heft ") == "heft"
    with pytest.raises(AccelsimError) as many:
        one_scheduler("naive, heft")
    assert (many.value.key, many.value.detail) == (
        "--scheduler",
        "this command runs one scheduler; got 2 (naive, heft)",
    )
    with pytest.raises(AccelsimError) as none:
        one_scheduler(" , ")
    assert none.value.detail == "name at least one scheduler, got ' , '"
    with pytest.raises(AccelsimError) as empty:
        comma_list("a,,b", "--chip", "chip")
    assert (empty.value.key, empty.value.detail) == ("--chip", "an empty chip in 'a,,b' (two commas, or one at an end)")
    with pytest.raises(AccelsimError) as twice:
        comma_list("a,b,a", "--chip", "chip")
    assert twice.value.detail == "'a' given more than once in 'a,b,a'"


def test_an_argparse_refusal_names_the_option_first(capsys):
    """argparse's "argument --batch: ..." becomes "--batch: ...", on one line."""
    assert main([*GENERATE[:-2], "--output-tokens", "0"]) == 2
    assert capsys.readouterr().err == "accelsim: error: --output-tokens: must be from 1 to 2,147,483,647, got 0\n"
    assert main(["run", "--chip", "gaudi1", "--graph", EXAMPLE, "--bogus"]) == 2
    assert capsys.readouterr().err == "accelsim: error: unrecognized arguments: --bogus\n"


def test_the_edges_of_the_shared_parsers(capsys):
    """What the other tests leave unsaid: the comma list's default word and its list of repeats, the largest whole
    number taken, a value outside an option's choices, a metavar in help, a retired spelling given without a value,
    no command at all, and the top help's description and command list."""
    import argparse as argparse_

    from accelsim.errors import AccelsimError
    from accelsim.limits import MAX_WORKLOAD_SIZE
    from accelsim.options import comma_list, one_scheduler, positive

    with pytest.raises(AccelsimError) as none:
        comma_list("", "--x")
    assert (none.value.key, none.value.detail) == ("--x", "name at least one name, got ''")
    with pytest.raises(AccelsimError) as twice:
        comma_list("a,b,a,b", "--x")
    assert twice.value.detail == "'a', 'b' given more than once in 'a,b,a,b'"
    with pytest.raises(AccelsimError) as empty:
        one_scheduler(",")
    assert empty.value.key == "--scheduler"
    assert positive(str(MAX_WORKLOAD_SIZE)) == MAX_WORKLOAD_SIZE
    with pytest.raises(argparse_.ArgumentTypeError):
        positive(str(MAX_WORKLOAD_SIZE + 1))
    argv = ["train", "--system", "hls-gaudi2", "--workload", "gpt2-small", "--global-batch", "8"]
    assert main([*argv, "--zero", "5"]) == 2
    assert capsys.readouterr().err.startswith("accelsim: error: --zero: invalid choice: 5")
    assert main(["compare", "--chip", "gaudi1", "--graph", EXAMPLE, "--schedulers"]) == 2
    assert capsys.readouterr().err == "accelsim: error: --schedulers: is now --scheduler NAME,NAME\n"
    assert main([]) == 2
    assert capsys.readouterr().err == "accelsim: error: the following arguments are required: command\n"
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--parallel tp=T,pp=P,dp=D" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    top = "".join(capsys.readouterr().out.split())
    assert "The``accelsim``command." in top
    for command in COMMANDS.values():
        assert "".join(command.help.split()) in top
