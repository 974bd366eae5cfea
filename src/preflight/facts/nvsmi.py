"""nvidia-smi output, parsed: the `-q -x` XML report and the `--query-gpu` CSV form.

Both give {"driver": "535.154.05", "cuda": "12.2", "gpus": [{"index", "name", "uuid",
"persistence", "ecc", "memory_mib", "retired_pending", "remapped_pending",
"remapped_failure"}]}; fields a driver does not report are None. The XML report adds the
health picture (`health` per GPU: bus id, PCIe link, clock event reasons, temperature,
power, ECC counts, retired pages, remapped rows, MIG and compute mode), across the
element names drivers have used (clocks_throttle_reasons became clocks_event_reasons in
535; power_readings became gpu_power_readings; ECC counters split into sram/dram in 470).
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

# --query-gpu fields the CSV form asks for, in this order (see `nvidia-smi --help-query-gpu`)
CSV_FIELDS = ("index", "name", "uuid", "driver_version", "persistence_mode",
              "ecc.mode.current", "memory.total", "retired_pages.pending")


class SmiError(ValueError):
    """The text is not nvidia-smi output we understand."""


def parse_xml(text: str) -> dict:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SmiError(f"nvidia-smi -q -x output is not XML: {exc}") from None
    gpus = [_xml_gpu(index, gpu) for index, gpu in enumerate(root.findall("gpu"))]
    return {"driver": _text(root, "driver_version"), "cuda": _text(root, "cuda_version"),
            "gpus": gpus}


def _xml_gpu(index: int, gpu: ET.Element) -> dict:
    memory = _text(gpu, "fb_memory_usage/total")
    return {
        "index": int(minor) if (minor := _text(gpu, "minor_number") or "").isdigit() else index,
        "name": _text(gpu, "product_name"),
        "uuid": _text(gpu, "uuid"),
        "persistence": _text(gpu, "persistence_mode"),
        "ecc": _text(gpu, "ecc_mode/current_ecc"),
        "memory_mib": int(memory.split()[0]) if memory and memory.split()[0].isdigit() else None,
        "retired_pending": _yes(_text(gpu, "retired_pages/pending_retirement")),
        "remapped_pending": _yes(_text(gpu, "remapped_rows/remapped_row_pending")),
        "remapped_failure": _yes(_text(gpu, "remapped_rows/remapped_row_failure")),
        "health": _health(gpu),
        # NVSwitch systems: Completed/Success once Fabric Manager has set the GPU up
        "fabric": {"state": _text(gpu, "fabric/state"), "status": _text(gpu, "fabric/status")},
        "processes": [_process(p) for p in gpu.findall("processes/process_info")[:32]],
    }


def _process(proc: ET.Element) -> dict:
    used = (_text(proc, "used_memory") or "").split()
    return {"pid": int(pid) if (pid := _text(proc, "pid") or "").isdigit() else None,
            "type": _text(proc, "type"), "name": (_text(proc, "process_name") or "")[:256],
            "used_mib": int(used[0]) if used and used[0].isdigit() else None}


def _health(gpu: ET.Element) -> dict:
    link = "pci/pci_gpu_link_info/"
    power = gpu.find("gpu_power_readings")
    power = power if power is not None else gpu.find("power_readings")
    reasons = gpu.find("clocks_event_reasons")
    reasons = reasons if reasons is not None else gpu.find("clocks_throttle_reasons")
    return {
        "bus_id": _text(gpu, "pci/pci_bus_id") or gpu.get("id"),
        "pcie_gen": number(_text(gpu, link + "pcie_gen/current_link_gen")),
        "pcie_gen_max": number(_text(gpu, link + "pcie_gen/max_link_gen")),
        "pcie_width": number(_text(gpu, link + "link_widths/current_link_width")),
        "pcie_width_max": number(_text(gpu, link + "link_widths/max_link_width")),
        "performance_state": _text(gpu, "performance_state"),
        "clock_reasons": _active(reasons),
        "temp_c": number(_text(gpu, "temperature/gpu_temp")),
        "temp_slowdown_c": number(_text(gpu, "temperature/gpu_temp_slow_threshold")),
        "temp_shutdown_c": number(_text(gpu, "temperature/gpu_temp_max_threshold")),
        "power_w": number(_text(power, "power_draw")) if power is not None else None,
        "power_limit_w": number(_text(power, "current_power_limit") or
                                 _text(power, "power_limit")) if power is not None else None,
        "ecc_volatile": _ecc(gpu.find("ecc_errors/volatile")),
        "ecc_aggregate": _ecc(gpu.find("ecc_errors/aggregate")),
        "retired_pages": sum(number(_text(gpu, f"retired_pages/{kind}/retired_count")) or 0
                             for kind in ("multiple_single_bit_retirement",
                                          "double_bit_retirement")),
        "remapped_uncorrectable": number(_text(gpu, "remapped_rows/remapped_row_unc")),
        "mig": _text(gpu, "mig_mode/current_mig"),
        "compute_mode": _text(gpu, "compute_mode"),
    }


def _active(reasons: ET.Element | None) -> list[str] | None:
    """The clock event reasons that are Active, by short name (gpu_idle, hw_slowdown ...)."""
    if reasons is None:
        return None
    out = []
    for child in reasons:
        name = child.tag.removeprefix("clocks_event_reason_").removeprefix(
            "clocks_throttle_reason_")
        if (child.text or "").strip() == "Active":
            out.append(name)
    return out


def _ecc(counters: ET.Element | None) -> dict | None:
    """{"sram_uncorrectable", "sram_correctable", "dram_uncorrectable", "dram_correctable"}:
    the 470+ layout, or the older single_bit/double_bit totals counted as DRAM."""
    if counters is None:
        return None
    out = {}
    for child in counters:
        if child.tag in ("single_bit", "double_bit"):
            key = "dram_correctable" if child.tag == "single_bit" else "dram_uncorrectable"
            out[key] = number(_text(child, "total"))
            continue
        memory = "sram" if child.tag.startswith("sram") else "dram" if \
            child.tag.startswith("dram") else None
        if memory is None or "threshold" in child.tag:
            continue
        kind = "uncorrectable" if "uncorrectable" in child.tag else "correctable"
        value = number((child.text or "").strip())
        if value is not None:  # 550's sram_uncorrectable_parity / _secded add up
            out[f"{memory}_{kind}"] = out.get(f"{memory}_{kind}", 0) + value
    return out


def number(value: str | None) -> float | None:
    """The leading number of "16x", "4", "34 C", "68.91 W"; None for N/A or junk."""
    if not value:
        return None
    head = value.split()[0].rstrip("xX")
    try:
        parsed = float(head)
    except ValueError:
        return None
    return int(parsed) if parsed.is_integer() else parsed


def parse_csv(text: str) -> dict:
    """`nvidia-smi --query-gpu=<CSV_FIELDS> --format=csv,nounits` (with its header line)."""
    rows = list(csv.reader(io.StringIO(text.strip()), skipinitialspace=True))
    if not rows or not rows[0] or not rows[0][0].startswith("index"):
        raise SmiError("nvidia-smi CSV output has no header line starting with 'index'")
    header = [h.split(" [")[0].strip() for h in rows[0]]
    gpus, driver = [], None
    for row in rows[1:]:
        cell = {h: (None if c.strip() in ("N/A", "[N/A]") else c.strip())
                for h, c in zip(header, row, strict=False)}
        driver = cell.get("driver_version") or driver
        memory = cell.get("memory.total") or ""
        gpus.append({
            "index": int(cell["index"]), "name": cell.get("name"), "uuid": cell.get("uuid"),
            "persistence": cell.get("persistence_mode"), "ecc": cell.get("ecc.mode.current"),
            "memory_mib": int(memory) if memory.isdigit() else None,
            "retired_pending": _yes(cell.get("retired_pages.pending")),
            "remapped_pending": None, "remapped_failure": None})
    return {"driver": driver, "cuda": None, "gpus": gpus}


def parse(smi: dict) -> dict:
    """The probe's `smi` fact (format, rc, text) parsed; raises SmiError when unusable."""
    if smi["rc"] != 0:
        raise SmiError(f"nvidia-smi failed (exit {smi['rc']}): {smi.get('error') or '?'}")
    return parse_xml(smi["text"]) if smi["format"] == "xml" else parse_csv(smi["text"])


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return None if value in ("N/A", "[N/A]", "") else value


def _yes(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() in ("yes", "true", "1")


def parse_nvlink(text: str) -> dict[int, dict[int, float | None]]:
    """`nvidia-smi nvlink -s`: GPU index -> {link: GB/s, or None for <inactive>}.

    >>> parse_nvlink("GPU 0: NVIDIA H100 (UUID: GPU-1)\\n\\t Link 0: 26.562 GB/s\\n"
    ...              "\\t Link 1: <inactive>\\n")
    {0: {0: 26.562, 1: None}}
    """
    gpus: dict[int, dict[int, float | None]] = {}
    current = None
    for line in text.splitlines():
        head = line.strip()
        if head.startswith("GPU ") and ":" in head:
            index = head[4:].split(":", 1)[0]
            current = int(index) if index.isdigit() else None
            if current is not None:
                gpus[current] = {}
        elif head.startswith("Link ") and current is not None and ":" in head:
            link, _, value = head[5:].partition(":")
            if link.strip().isdigit():
                gpus[current][int(link)] = number(value.strip()) if "GB/s" in value \
                    else None
    return gpus
