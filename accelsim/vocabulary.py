"""The words a task graph and a chip profile share: data types (with their sizes) and engine kinds.

They live apart from both so that the target-independent side (graphs, workloads, the lowering) never imports a
chip, and the chip side never imports a workload.
"""

from __future__ import annotations

from typing import Literal

Dtype = Literal["fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
#: Bytes per element of each dtype.
DTYPE_BYTES: dict[str, int] = {"fp32": 4, "tf32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}

#: Engine kinds that run on vector-style (SIMD lanes) cost models.
VECTOR_LIKE = ("vector", "scalar", "gpsimd")
#: Every engine kind a task may ask for and a chip may have.
#: network and data_network carry the collectives of a card's tensor-parallel group and of its data-parallel replicas.
ENGINE_KINDS = ("matrix", *VECTOR_LIKE, "dma", "network", "data_network")

#: A profile's ``hbm_gb`` counts binary gigabytes: HBM comes in stacks of 2^n bytes (Gaudi 2's 96 GB is six stacks
#: of 16 GiB, 103 x 10^9 bytes). Everything reported is in 10^9 bytes. Read a card's HBM through Chip.hbm_bytes.
GIB = 2**30
