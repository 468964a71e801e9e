"""``sloscale agent``: a GPU node exporter on NVML (``nvidia-ml-py``) with DCGM-compatible names.

``collect`` reads cards, MIG devices and per-process usage; ``cgroup`` maps processes to pods
through ``/proc/<pid>/cgroup``; ``exposition`` writes the text format; ``agent`` serves it.
"""
