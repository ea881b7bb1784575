#!/usr/bin/python3
"""Check executed Jupyter notebooks (GoNB kernel): errors, noise, outputs and figures.

Usage: check_notebook.py [--committed] NOTEBOOK.ipynb [NOTEBOOK.ipynb ...]

CI runs it twice: with --committed on the notebooks as committed (their outputs are
what GitHub shows), and without it on the copies it has just executed.

A notebook fails when
  * any cell output has output_type "error" (GoNB reports compile errors,
    failed `go get` and failed `!`/`!*` shell commands this way),
  * any stderr stream output contains "panic:" or "exit status" (a panic or a
    non-zero exit, e.g. notebook.Must stopping a cell),
  * any cell prints anything else on stderr: noise for a reader (an expected
    condition should be said on stdout, or not at all),
  * fewer than half of its code cells have outputs, or no code cell was executed,
  * it shows no figure: no output with MIME type image/svg+xml or image/png, nor a
    text/html output embedding one (`<svg`, or `<img` with a data:image/ source).
    Note that gonbui.DisplaySVG emits text/html ("<div><svg ...></div>"), not
    image/svg+xml, so both forms count.
    A notebook that legitimately has no figure can opt out with notebook-level
    metadata {"mmpoison": {"expect_figure": false}}.
With --committed, also when
  * an output holds a machine-specific absolute path (/tmp/..., /home/...,
    /root/..., /work/..., /Users/...), or a cell keeps nbclient's execution
    timestamps (metadata.execution): both change with every run and machine.
    .ci/execute-notebooks writes notebooks that pass.

Prints one summary line per notebook and exits 1 if any notebook failed.
Uses only the standard library.
"""
import html
import json
import re
import sys

STDERR_MARKERS = ("panic:", "exit status")
IMAGE_MIMES = ("image/svg+xml", "image/png")
# Absolute paths that name one machine's folders (an output should name paths relative to the repository or
# the cache root instead).
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:tmp|home|root|work|Users|private|var/folders)/[^\s\"'<>]*")


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


def _machine_paths(output):
    """Machine-specific absolute paths in an output's text (images' data left out)."""
    texts = []
    if output.get("output_type") == "stream":
        texts.append(_text(output.get("text", "")))
    for mime, value in (output.get("data") or {}).items():
        if mime.startswith("image/"):
            continue
        texts.append(re.sub(r"data:image/[^\"']*", "", _text(value)))
    found = []
    for t in texts:
        found.extend(m.group(0) for m in MACHINE_PATH.finditer(t))
    return found


def check(path, committed=False):
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
    cells_with_outputs = 0
    timestamped = 0
    for idx, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        code_cells += 1
        if cell.get("execution_count") is not None:
            executed_cells += 1
        if cell.get("outputs"):
            cells_with_outputs += 1
        if "execution" in (cell.get("metadata") or {}):
            timestamped += 1
        where = "cell %d (%s)" % (idx, _first_line(_text(cell.get("source", "")), 60) or "empty")
        html_errors = []
        for out in cell.get("outputs", []):
            if committed:
                for p in _machine_paths(out)[:3]:
                    problems.append("%s: machine-specific path in the output: %s" % (where, p[:120]))
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
                else:
                    if lines:
                        problems.append("%s: noise on stderr:\n        %s" % (
                            where, "\n        ".join(l[:200] for l in lines[:5])))
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
    if code_cells and 2 * cells_with_outputs < code_cells:
        problems.append("only %d of %d code cells have outputs: at least half must" % (cells_with_outputs, code_cells))
    if committed and timestamped:
        problems.append("%d cells keep execution timestamps (metadata.execution)" % timestamped)

    fig_desc = ", ".join("%d %s" % (n, k) for k, n in sorted(figures.items())) or "none"
    summary = "%d/%d code cells executed, %d with outputs, figures: %s%s" % (
        executed_cells, code_cells, cells_with_outputs, fig_desc, "" if expect_figure else " (not required)")
    return not problems, summary, problems


def main(argv):
    args = argv[1:]
    committed = "--committed" in args
    paths = [a for a in args if a != "--committed"]
    if not paths or any(p.startswith("-") for p in paths):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        ok, summary, problems = check(path, committed)
        print("%s %s: %s" % ("PASS" if ok else "FAIL", path, summary))
        for p in problems:
            print("    - " + p)
        failed += 0 if ok else 1
    print("notebook check summary%s: %d ok, %d failing" % (
        " (committed outputs)" if committed else "", len(paths) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
