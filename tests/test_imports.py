"""What `import accelsim.cli` pulls in: every command pays for it, so heavy libraries only a few commands use
(scipy for the lower bound's LP and the fits, matplotlib for plots) are imported where they are used."""

import subprocess
import sys


def test_importing_the_cli_imports_neither_scipy_nor_matplotlib():
    code = "import sys, accelsim.cli; print(sorted(m for m in ('scipy', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_lower_bound_still_solves_its_lp_once_scipy_is_imported_late():
    code = (
        "import sys, accelsim\n"
        "from accelsim.bounds import lower_bound\n"
        "from accelsim.lowering import lower\n"
        "from accelsim.workload import load_workload\n"
        "assert 'scipy' not in sys.modules\n"
        "chip = accelsim.load_chip('gaudi1')\n"
        "graph = accelsim.compile_graph(lower(load_workload('gpt2-small', ['layers=1'])), chip).graph\n"
        "b = lower_bound(graph, chip)\n"
        "print('scipy' in sys.modules, b.area > 0, b.cycles >= b.area)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True True True"
