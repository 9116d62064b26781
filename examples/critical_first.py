"""A user-written scheduler: default engine kinds, tasks by decreasing critical path to the end of the graph.

    accelsim compare --plugin examples/critical_first.py --chip gaudi2 --workload gpt2-small \
        --scheduler naive,critical-first
"""

from accelsim import Schedule, Scheduler, register
from accelsim.planning import list_schedule, preferred_kinds, priority_order, upward_rank


@register
class CriticalFirst(Scheduler):
    name = "critical-first"

    def schedule(self, graph, chip, costs):
        kinds = preferred_kinds(graph, chip)
        order = priority_order(graph, upward_rank(graph, costs.fastest().tolist()))
        engine, start = list_schedule(graph, chip, costs, order, kinds.__getitem__)
        return Schedule.from_plan(graph, chip, engine, start, self.name)
