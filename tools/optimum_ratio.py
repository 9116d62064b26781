import accelsim, random, sys
from hypothesis import given, settings, strategies as st, HealthCheck
from accelsim.strategies import chip_dicts, task_graphs
from accelsim.optimal import optimal_latency
import hypothesis
worst = {"balanced": 0, "heft": 0, "naive": 0}
@settings(max_examples=int(sys.argv[1]), deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(chip_dicts(dma=False), task_graphs(max_tasks=8))
def t(cd, graph):
    cd = dict(cd); cd["memory"] = dict(cd["memory"], hbm_bandwidth_gbps=1e9)
    chip = accelsim.chip_from_dict(cd, "x")
    opt = optimal_latency(graph, chip)
    for s in worst:
        r = accelsim.run(chip, graph, s)
        assert r.latency_cycles >= opt, (s, r.latency_cycles, opt)
        worst[s] = max(worst[s], r.latency_cycles / opt)
t()
print(worst)
