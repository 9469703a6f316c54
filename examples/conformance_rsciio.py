"""Compare what qdscope reads from public microscope files with RosettaSciIO.

Usage: conformance_rsciio.py DATA_DIR QDSCOPE_BINARY [--markdown OUT.md]

For every DM3/DM4, EMD, TIA (EMI and SER) and TIFF file under DATA_DIR and
every signal RosettaSciIO (the reference reader) returns, run
`qdscope inspect --json FILE` and `qdscope convert --signal K FILE OUT.npy`
and compare shape, stored dtype, values (exact for integers, max abs
difference otherwise) and the calibration of every axis (scale and unit,
lengths compared in Å, reciprocal lengths in 1/Å). Prints a Markdown table
and the counts. Run by examples/conformance_rsciio.sh.
"""

import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
logging.getLogger("rsciio").setLevel(logging.ERROR)

EXTS = {
    ".dm3": "digitalmicrograph",
    ".dm4": "digitalmicrograph",
    ".emd": "emd",
    ".emi": "tia",
    ".ser": "tia",
    ".tif": "tiff",
    ".tiff": "tiff",
}

# Time units → s per unit (frame axes).
TIME = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}

# Length units → Å per unit.
LENGTH = {
    "m": 1e10, "meters": 1e10, "cm": 1e8, "mm": 1e7, "µm": 1e4, "μm": 1e4, "um": 1e4,
    "nm": 10.0, "Å": 1.0, "A": 1.0, "angstrom": 1.0, "pm": 1e-2,
}

QD_DTYPE = {
    "uint8": "u8", "int8": "i8", "uint16": "u16", "int16": "i16",
    "uint32": "u32", "int32": "i32", "uint64": "u64", "int64": "i64",
    "float16": "f16", "float32": "f32", "float64": "f64",
    "complex64": "c64", "complex128": "c128", "bool": "bool",
}


def norm_unit(scale, unit):
    """(scale, unit, kind) with lengths in Å and reciprocal lengths in 1/Å."""
    u = (unit or "").strip()
    if u in ("", "[]", "<undefined>", "None"):
        return float(scale), "", "other"
    s = u.replace(" ", "")
    if s in LENGTH:
        return float(scale) * LENGTH[s], "Å", "length"
    for pre in ("1/",):
        if s.startswith(pre) and s[len(pre):] in LENGTH:
            return float(scale) / LENGTH[s[len(pre):]], "1/Å", "reciprocal"
    if s in TIME:
        return float(scale) * TIME[s], "s", "other"
    for suf in ("^-1", "⁻¹"):
        if s.endswith(suf) and s[: -len(suf)] in LENGTH:
            return float(scale) / LENGTH[s[: -len(suf)]], "1/Å", "reciprocal"
    return float(scale), u, "other"


def rs_dtype(dt):
    if dt.names:
        fields = [dt.fields[n][0] for n in dt.names]
        if dt.names in (("R", "G", "B", "A"), ("R", "G", "B")) and all(
            f == np.uint8 for f in fields
        ):
            return "rgba8" if len(fields) == 4 else "rgb8"
        return "struct(" + ",".join(f"{n}:{dt.fields[n][0]}" for n in dt.names) + ")"
    return QD_DTYPE.get(dt.name, dt.name)


def fmt_scale(axes):
    """The calibration of the last two axes, e.g. `0.9962 Å`."""
    parts = []
    for scale, unit, _ in axes[-2:]:
        parts.append(f"{scale:.4g} {unit}".strip())
    if len(parts) == 2 and parts[0] == parts[1]:
        return parts[0]
    return " / ".join(parts) if parts else "–"


def rsciio_read(path):
    mod = importlib.import_module("rsciio." + EXTS[path.suffix.lower()])
    # Velox spectrum-image files: the image stream as stored (every frame),
    # as qdscope reads it, not the default single frame.
    kwargs = {"load_SI_image_stack": True} if path.suffix.lower() == ".emd" else {}
    out = []
    for d in mod.file_reader(str(path), **kwargs):
        data = np.asarray(d["data"])
        axes = []
        for a in d["axes"]:
            axes.append(
                (norm_unit(a.get("scale", 1.0), a.get("units")), bool(a.get("navigate", False)))
            )
        title = ((d.get("metadata") or {}).get("General") or {}).get("title") or ""
        out.append(
            {
                "title": str(title),
                "data": data,
                "shape": tuple(int(v) for v in data.shape),
                "dtype": rs_dtype(data.dtype),
                "axes": [a for a, _ in axes],
                "signal_dims": sum(1 for _, nav in axes if not nav),
            }
        )
    return out


def run(args):
    return subprocess.run(args, capture_output=True, text=True)


def first_line(text):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[-1] if len(lines) > 1 and "error" in lines[-1] else lines[0]
    return line.replace("qdscope: error: ", "")[:160] + (
        f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    )


def qdscope_read(exe, path, tmp, data_dir):
    p = run([exe, "inspect", "-q", "--json", str(path)])
    if p.returncode != 0:
        return None, first_line(p.stderr).replace(str(data_dir) + "/", "")
    info = json.loads(p.stdout)
    sigs = []
    for k, s in enumerate(info["signals"]):
        sig = {
            "title": s["title"],
            "shape": tuple(s["shape"]),
            "dtype": s["dtype"],
            "axes": [norm_unit(a["scale"], a["unit"]) for a in s["axes"]],
            "unreadable": s.get("unreadable"),
            "data": None,
            "error": None,
        }
        if sig["unreadable"] is None:
            out = Path(tmp) / f"sig{k}.npy"
            c = run([exe, "convert", "-q", "--signal", str(k), str(path), "-o", str(out)])
            if c.returncode != 0:
                sig["error"] = first_line(c.stderr).replace(str(path.parent) + "/", "")
            else:
                sig["data"] = np.load(out)
                out.unlink()
        sigs.append(sig)
    return {"format": info["format"], "signals": sigs}, None


def is_palette_tiff(path):
    import tifffile

    with tifffile.TiffFile(path) as t:
        return t.pages[0].photometric == tifffile.PHOTOMETRIC.PALETTE


def out_of_scope(path, r, is_prismatic):
    """Why qdscope does not aim to read a RosettaSciIO signal, or None."""
    ext = path.suffix.lower()
    if ext in (".tif", ".tiff") and is_palette_tiff(path):
        return "out of scope: palette-colour TIFF (qdscope reads grey-level TIFF)"
    if ext == ".emd" and is_prismatic:
        return "out of scope: Prismatic/py4DSTEM simulation EMD (qdscope reads Velox and Berkeley EMD)"
    if ext in (".tif", ".tiff") and (r["dtype"] in ("rgb8", "rgba8") or r["dtype"].startswith("struct")):
        return "out of scope: colour TIFF (qdscope reads grey-level TIFF)"
    if r["dtype"] == "object":
        return "out of scope: array of strings (qdscope reads numeric arrays)"
    if ext in (".emd", ".emi", ".ser") and r["signal_dims"] == 1:
        return "out of scope: spectrum (qdscope reads images)"
    return None


def values_diff(r, q):
    a = r["data"]
    b = q["data"]
    if r["dtype"] == "rgba8" and b.dtype == np.dtype("<u4"):
        a = np.ascontiguousarray(a).view("<u4").reshape(a.shape)
    if b.dtype.names and set(b.dtype.names) == {"real", "imag"}:
        b = b["real"].astype(np.float64) + 1j * b["imag"].astype(np.float64)
    if a.shape != b.shape:
        return None
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return float(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.size else 0.0
    a = a.astype(np.complex128) if np.iscomplexobj(a) or np.iscomplexobj(b) else a.astype(np.float64)
    b = b.astype(a.dtype)
    if a.size == 0:
        return 0.0
    both_nan = np.isnan(a) & np.isnan(b)
    d = np.abs(a - b)
    d[both_nan] = 0
    return float(np.nanmax(d))


def compare(r, q):
    """(problems, notes): problems fail the signal (shape, dtype, values,
    calibration of the spatial axes); notes do not (titles, and the
    calibration of frame, time or energy axes, which are no pixel
    calibration)."""
    problems, notes = [], []
    if r["title"] not in ("", "__unnamed__") and r["title"].lower() != q["title"].lower():
        notes.append(f"title '{q['title']}' vs '{r['title']}'")
    if r["shape"] != q["shape"]:
        problems.append(f"shape {q['shape']} vs {r['shape']}")
    if r["dtype"] != q["dtype"]:
        problems.append(f"dtype {q['dtype']} vs {r['dtype']}")
    if q["data"] is None:
        problems.append(q["error"] or "no data")
    elif r["shape"] == q["shape"]:
        d = values_diff(r, q)
        scale = float(np.nanmax(np.abs(r["data"]))) if r["data"].size and r["data"].dtype.kind in "iufc" else 1.0
        if d is None:
            problems.append("values: different shape")
        elif d > 1e-6 * max(scale, 1e-30) and d != 0:
            problems.append(f"values: max |diff| {d:.3g}")
    if len(r["axes"]) == len(q["axes"]):
        for i, ((rs, ru, rk), (qs, qu, qk)) in enumerate(zip(r["axes"], q["axes"])):
            spatial = "other" not in (rk, qk) or rk != qk
            where = problems if spatial else notes
            if rk != qk or (rk == "other" and ru.lower() != qu.lower()):
                where.append(f"axis {i} unit '{qu}' vs '{ru}'")
            elif abs(rs - qs) > 1e-6 * max(abs(rs), abs(qs)):
                where.append(f"axis {i} scale {qs:.6g} vs {rs:.6g} {ru}".rstrip())
    elif r["shape"] == q["shape"]:
        problems.append(f"{len(q['axes'])} axes vs {len(r['axes'])}")
    return problems, notes


def match(rs, qs):
    """Pair RosettaSciIO signals with qdscope signals: in order when both list
    the same shapes in the same order, else same title first, then same
    shape, then same index."""
    if len(rs) == len(qs) and all(r["shape"] == q["shape"] for r, q in zip(rs, qs)):
        return list(range(len(rs))), set(range(len(qs)))
    used = set()
    pairs = [None] * len(rs)
    for pass_ in ("title", "shape", "index"):
        for i, r in enumerate(rs):
            if pairs[i] is not None:
                continue
            for j, q in enumerate(qs):
                if j in used:
                    continue
                if pass_ == "title" and r["title"] and q["title"].lower() == r["title"].lower():
                    pass
                elif pass_ == "shape" and (q["shape"] == r["shape"]):
                    pass
                elif pass_ == "index" and j == i and len(rs) == len(qs):
                    pass
                else:
                    continue
                pairs[i] = j
                used.add(j)
                break
    return pairs, used


def main():
    data_dir = Path(sys.argv[1])
    exe = sys.argv[2]
    files = sorted(
        p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in EXTS
    )
    rows = []
    n_files = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            rel = str(path.relative_to(data_dir))
            n_files += 1
            is_prismatic = False
            if path.suffix.lower() == ".emd":
                import h5py

                with h5py.File(path, "r") as h:
                    is_prismatic = "4DSTEM_simulation" in h
            try:
                rs = rsciio_read(path)
                rs_err = None
            except Exception as e:  # noqa: BLE001 - any reader failure is reported
                rs, rs_err = [], f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
            qd, qd_err = qdscope_read(exe, path, tmp, data_dir)
            qsigs = qd["signals"] if qd else []
            if rs_err:
                rows.append((rel, "–", f"rsciio error: {rs_err}", "", describe_q(qd, qd_err), "not compared (RosettaSciIO cannot read it)", "skip"))
                continue
            pairs, used = match(rs, qsigs)
            for i, r in enumerate(rs):
                label = r["title"] or f"#{i}"
                rdesc = f"{list(r['shape'])} {r['dtype']} {fmt_scale(r['axes'])}"
                j = pairs[i]
                scope = out_of_scope(path, r, is_prismatic)
                if j is None:
                    if scope:
                        qd_text = f"error: {qd_err}" if qd_err else "(not read)"
                        rows.append((rel, label, rdesc, "", qd_text, scope, "scope"))
                    elif qd_err:
                        rows.append((rel, label, rdesc, "", f"error: {qd_err}", "mismatch: qdscope error", "bad"))
                    else:
                        rows.append((rel, label, rdesc, "", "(no such signal)", "mismatch: signal missing", "bad"))
                    continue
                q = qsigs[j]
                qdesc = f"[{j}] {list(q['shape'])} {q['dtype']} {fmt_scale(q['axes'])}"
                if q["unreadable"]:
                    verdict = (scope or "mismatch") + f": unreadable ({q['unreadable'][:100]})"
                    rows.append((rel, label, rdesc, "", qdesc, verdict, "scope" if scope else "bad"))
                    continue
                problems, notes = compare(r, q)
                note = f" (note: {'; '.join(notes)})" if notes else ""
                if problems:
                    rows.append((rel, label, rdesc, "", qdesc, "mismatch: " + "; ".join(problems) + note, "bad"))
                else:
                    rows.append((rel, label, rdesc, "", qdesc, "match" + note, "ok"))
            for j, q in enumerate(qsigs):
                if j not in used:
                    rows.append((rel, q["title"], "(not returned)", "", f"[{j}] {list(q['shape'])} {q['dtype']}", "extra signal (qdscope only)", "extra"))
    print("| file | signal | RosettaSciIO (shape dtype scale) | qdscope ([index] shape dtype scale) | verdict |")
    print("|---|---|---|---|---|")
    for rel, label, rdesc, _, qdesc, verdict, _k in rows:
        cell = lambda s: str(s).replace("|", "\\|")
        print(f"| {cell(rel)} | {cell(label)} | {cell(rdesc)} | {cell(qdesc)} | {cell(verdict)} |")
    kinds = [k for *_, k in rows]
    n_sig = sum(1 for k in kinds if k in ("ok", "bad", "scope"))
    in_scope = sum(1 for k in kinds if k in ("ok", "bad"))
    print()
    print(
        f"{n_files} files, {n_sig} signals read by RosettaSciIO "
        f"({sum(1 for k in kinds if k == 'skip')} file(s) it cannot read): "
        f"{in_scope} in qdscope's scope, {kinds.count('ok')} match, {kinds.count('bad')} do not; "
        f"{kinds.count('scope')} out of scope; {kinds.count('extra')} extra qdscope signal(s)"
    )


def describe_q(qd, err):
    if err:
        return f"error: {err}"
    return ", ".join(f"[{j}] {list(q['shape'])} {q['dtype']}" for j, q in enumerate(qd["signals"]))


if __name__ == "__main__":
    os.environ.setdefault("RUST_BACKTRACE", "0")
    main()
