"""Alibaba Elastic Container Instance sizing: the `k8s.aliyun.com/eci-use-specs` annotation.

ECI creates each pod on an instance of one of its vCPU-memory specifications, written "2-4Gi".
"1-1Gi" is none ("1 vCPU: 2, 4 and 8 GiB") and "500m-1Gi" is no form it reads; a pod sized
between two specifications is rounded up to the next. The table holds the specifications
offered in every region ("Specify vCPU and memory to create an instance", ECI user guide,
https://www.alibabacloud.com/help/en/eci/user-guide/specify-the-number-of-vcpus-and-memory-size-to-create-an-elastic-container-instance,
updated June 2026).
"""

from __future__ import annotations

import re
from decimal import Decimal

from workload.errors import UsageError

# vCPU -> memory (GiB) offered with it, in every region.
SPECS: dict[Decimal, tuple[int | Decimal, ...]] = {
    Decimal("0.25"): (Decimal("0.5"), 1),
    Decimal("0.5"): (1, 2),
    Decimal(1): (2, 4, 8),
    Decimal(2): (1, 2, 4, 8, 16),
    Decimal(4): (2, 4, 8, 16, 32),
    Decimal(8): (4, 8, 16, 32, 64),
    Decimal(12): (12, 24, 48, 96),
    Decimal(16): (16, 32, 64, 128),
    Decimal(24): (24, 48, 96, 192),
    Decimal(32): (32, 64, 128, 256),
    Decimal(52): (96, 192, 384),
    Decimal(64): (128, 256, 512),
}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def cores(cpu: str) -> Decimal:
    """A Kubernetes CPU quantity ("500m", "1", "1.5") in cores."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(m?)", cpu)
    if not m:
        raise UsageError(f"cpu {cpu!r} is not a CPU quantity such as 500m or 2")
    return Decimal(m.group(1)) / (1000 if m.group(2) else 1)


def gib(memory: str) -> Decimal:
    """A Kubernetes memory quantity ("1Gi", "1740Mi", "2G") in GiB."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", memory)
    if not m:
        raise UsageError(f"memory {memory!r} is not a memory quantity such as 1Gi")
    unit = m.group(2) or ""
    factor = _BINARY.get(unit) or _DECIMAL.get(unit) or 1
    return Decimal(m.group(1)) * factor / 2**30


def spec(cpu: str, memory: str) -> str:
    """The smallest ECI specification with at least `cpu` and `memory`, as the annotation
    takes it ("0.5-1Gi", "1-2Gi"); UsageError if no specification is that large."""
    want_cpu, want_gib = cores(cpu), gib(memory)
    for vcpu, memories in SPECS.items():
        fits = [Decimal(g) for g in memories if Decimal(g) >= want_gib]
        if vcpu >= want_cpu and fits:
            return f"{vcpu.normalize():f}-{fits[0].normalize():f}Gi"
    raise UsageError(f"no ECI specification holds {cpu} CPU and {memory}: at most 64-512Gi")
