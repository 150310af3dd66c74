"""Parsing of Slurm TRES strings such as ``cpu=2,mem=1000M,node=1,gres/gpu=1``."""
from __future__ import annotations


def parse_tres(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if "=" in part:
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip()
    return out


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def tres_cpus(tres: dict[str, str]) -> int:
    return _int(tres.get("cpu"))


def tres_gpus(tres: dict[str, str]) -> int:
    """Allocated GPUs: the untyped ``gres/gpu`` total, else the sum of typed entries."""
    if "gres/gpu" in tres:
        return _int(tres["gres/gpu"])
    return sum(_int(v) for k, v in tres.items() if k.startswith("gres/gpu:"))
