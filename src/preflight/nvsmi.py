"""nvidia-smi output, parsed: the `-q -x` XML report and the `--query-gpu` CSV form.

Both give {"driver": "535.154.05", "cuda": "12.2", "gpus": [{"index", "name", "uuid",
"persistence", "ecc", "memory_mib", "retired_pending", "remapped_pending",
"remapped_failure"}]}; fields a driver does not report are None.
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
    }


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
