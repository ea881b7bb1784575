#!/usr/bin/python3
"""Check executed Jupyter notebooks (GoNB kernel) for errors and figures.

Usage: check_notebook.py EXECUTED.ipynb [EXECUTED.ipynb ...]

A notebook fails when
  * any cell output has output_type "error" (GoNB reports compile errors,
    failed `go get`, failed `!`/`!*` shell commands and non-zero exits this way),
  * any stderr stream output contains "panic:" or "exit status",
  * it shows no figure: no output with MIME type image/svg+xml or image/png, nor a
    text/html output embedding one (`<svg`, or `<img` with a data:image/ source).
    Note that gonbui.DisplaySVG emits text/html ("<div><svg ...></div>"), not
    image/svg+xml, so both forms count.
    A notebook that legitimately has no figure can opt out with notebook-level
    metadata {"mmpoison": {"expect_figure": false}}.

Prints one summary line per notebook and exits 1 if any notebook failed.
Uses only the standard library.
"""
import html
import json
import re
import sys

STDERR_MARKERS = ("panic:", "exit status")
IMAGE_MIMES = ("image/svg+xml", "image/png")


def _text(value):
    if isinstance(value, list):
        return "".join(value)
    return value if isinstance(value, str) else ""


def _first_line(s, limit=200):
    for line in s.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def _html_error_text(output, max_lines=12):
    """Plain text of a GoNB HTML error display (compile / `go get` errors), or ""."""
    h = _text((output.get("data") or {}).get("text/html", ""))
    if "gonb-err" not in h and "application/vnd.jupyter.stderr" not in h:
        return ""
    h = re.sub(r"(?is)<style.*?</style>", "", h)
    # Drop the hover-only source context blocks (they contain a nested div).
    h = re.sub(r'(?is)<div class="gonb-err-context">.*?<div class="gonb-err-line">.*?</div>.*?</div>', "", h)
    h = re.sub(r"(?i)<br\s*/?>", "\n", h)
    text = html.unescape(re.sub(r"(?s)<[^>]+>", "", h))
    lines = [" ".join(l.split()) for l in text.splitlines()]
    lines = [l for l in lines if l]
    return "\n".join(lines[:max_lines])


def _figure_kind(output):
    data = output.get("data") or {}
    for mime in IMAGE_MIMES:
        if mime in data:
            return mime
    html = _text(data.get("text/html", "")).lower()
    if "<svg" in html:
        return "text/html <svg>"
    if "<img" in html and "data:image/" in html:
        return "text/html <img data:image>"
    return None


def check(path):
    """Returns (ok, summary_line, problem_lines)."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError) as e:
        return False, "cannot read notebook: %s" % e, []

    problems = []
    figures = {}
    code_cells = 0
    executed_cells = 0
    for idx, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        code_cells += 1
        if cell.get("execution_count") is not None:
            executed_cells += 1
        where = "cell %d (%s)" % (idx, _first_line(_text(cell.get("source", "")), 60) or "empty")
        html_errors = []
        for out in cell.get("outputs", []):
            otype = out.get("output_type")
            if otype == "error":
                tb = "\n".join(out.get("traceback") or [])
                msg = "%s: error %s: %s" % (where, out.get("ename", ""), _first_line(out.get("evalue", "")))
                tb_line = _first_line(tb)
                if tb_line and tb_line != _first_line(out.get("evalue", "")):
                    msg += " | " + tb_line
                for detail in html_errors:
                    msg += "\n        " + detail.replace("\n", "\n        ")
                html_errors = []
                problems.append(msg)
            elif otype == "stream" and out.get("name") == "stderr":
                text = _text(out.get("text", ""))
                text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)  # ANSI colors
                lines = [l.rstrip() for l in text.splitlines() if l.strip()]
                for marker in STDERR_MARKERS:
                    hits = [i for i, l in enumerate(lines) if marker in l]
                    if hits:
                        if marker == "panic:":  # the panic message and the top of the stack
                            excerpt = lines[hits[0]:hits[0] + 8]
                        else:  # what was printed just before "exit status N"
                            excerpt = lines[max(0, hits[-1] - 7):hits[-1] + 1]
                        problems.append("%s: stderr contains %r:\n        %s" % (
                            where, marker, "\n        ".join(l[:200] for l in excerpt)))
                        break
            elif otype in ("display_data", "execute_result", "update_display_data"):
                err_text = _html_error_text(out)
                if err_text:
                    html_errors.append(err_text)
                    continue
                kind = _figure_kind(out)
                if kind:
                    figures[kind] = figures.get(kind, 0) + 1

    expect_figure = (nb.get("metadata", {}).get("mmpoison", {}) or {}).get("expect_figure", True)
    n_figures = sum(figures.values())
    if expect_figure and n_figures == 0:
        problems.append("no figure: no image/svg+xml, image/png or inline <svg>/<img> HTML output")
    if code_cells and executed_cells == 0:
        problems.append("no code cell was executed")

    fig_desc = ", ".join("%d %s" % (n, k) for k, n in sorted(figures.items())) or "none"
    summary = "%d/%d code cells executed, figures: %s%s" % (
        executed_cells, code_cells, fig_desc, "" if expect_figure else " (not required)")
    return not problems, summary, problems


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = 0
    for path in argv[1:]:
        ok, summary, problems = check(path)
        print("%s %s: %s" % ("PASS" if ok else "FAIL", path, summary))
        for p in problems:
            print("    - " + p)
        failed += 0 if ok else 1
    print("notebook check summary: %d ok, %d failing" % (len(argv) - 1 - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
