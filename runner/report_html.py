"""report.html: one self-contained page (inline CSS, JS and SVG; no external assets)."""
from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from runner import compare, merge, verdicts as V, xcr0, xsave_svg
from runner.runstate import InstanceResult, Run

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
tr.inst>td{border-top:1px solid #ddd}
.v{display:inline-block;min-width:5em;text-align:center;border-radius:3px;font-weight:600}
.v-pass{background:#c8e6c9}.v-fail{background:#ef9a9a}.v-skip{background:#e0e0e0}
.v-error{background:#ffcc80}.v-interrupted{background:#b39ddb}.v-pending{background:#fff}
.banner{padding:6px 10px;margin:8px 0;border-radius:4px;background:#fff3cd}
.bad{background:#f8d7da}code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f6f6f6;padding:6px;overflow:auto;max-height:24em}
.ximage rect.diff:hover{stroke:#000;stroke-width:2}.muted{color:#777}
#filters label{margin-right:1em}
#matrix td{border-top:1px solid #eee;white-space:nowrap}#matrix th{vertical-align:bottom}
#matrix a.v{text-decoration:none;color:inherit}
"""

JS = """
(function(){
  var boxes=document.querySelectorAll('#filters input[type=checkbox]');
  var text=document.getElementById('filter-text');
  function apply(){
    var on={};boxes.forEach(function(b){on[b.value]=b.checked;});
    var q=(text.value||'').toLowerCase();var shown=0;
    document.querySelectorAll('#instances tr.inst').forEach(function(tr){
      var ok=on[tr.dataset.verdict]!==false&&(!q||tr.dataset.search.indexOf(q)>=0);
      tr.hidden=!ok;var d=document.getElementById(tr.dataset.details);if(d)d.hidden=!ok;
      if(ok)shown++;
    });
    document.getElementById('shown').textContent=shown;
  }
  var m=/^#verdict=([a-z,]+)$/.exec(location.hash);   /* link to e.g. #verdict=fail,error */
  if(m){var want=m[1].split(',');boxes.forEach(function(b){b.checked=want.indexOf(b.value)>=0;});}
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  text.addEventListener('input',apply);apply();
  document.body.dataset.ready='1';
})();
"""

ONERROR = """window.kvmfpuErrors=[];window.addEventListener('error',function(e){
window.kvmfpuErrors.push(String(e.message));document.documentElement.dataset.jserrors=
window.kvmfpuErrors.length;});"""


def _badge(verdict: str | None) -> str:
    v = verdict or "pending"
    return f'<span class="v v-{escape(v)}">{escape(v)}</span>'


def _kv_table(rows: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>"
                               for k, v in rows) + "</table>"


def _components_line(run: dict[str, Any]) -> str:
    ex = run.get("summary", {}).get("exercised", [])
    kvm = run["host"].get("kvm_supported_xcr0")
    supported = xcr0.names(int(kvm, 16)) if kvm else []
    missing = [c for c in supported if c not in ex]
    text = escape(", ".join(ex) or "none")
    if missing:
        text += (f' <span class="muted">(KVM supports but no test exercised: '
                 f'{escape(", ".join(missing))})</span>')
    return text


def _summary(run: dict[str, Any]) -> str:
    s = run.get("summary", {})
    host = run["host"]
    cpu = host.get("cpu", {})
    counts = s.get("counts", {})
    banner = ""
    if run.get("cut_short"):
        banner = (f'<p class="banner bad">Run cut short ({escape(str(run.get("cut_short_reason")))}'
                  f'): {counts.get("not_run", 0)} instance(s) never ran; finished results are '
                  'kept below.</p>')
    elif run.get("status") == "running":
        banner = '<p class="banner">Run still in progress (or its runner died).</p>'
    kvm = host.get("kvm_supported_xcr0")
    kvm_names = (", ".join(xcr0.names(int(kvm, 16))) if kvm
                 else host.get("kvm_supported_xcr0_source", ""))
    run_verdict = {V.EXIT_PASS: V.PASS, V.EXIT_FAIL: V.FAIL}.get(s.get("exit_code"), V.ERROR)
    rows = [
        ("verdict", f'{_badge(run_verdict)} {escape(s.get("reason", ""))} '
                    f'(exit code {s.get("exit_code")})'),
        ("profile", f'{escape(run["profile"])} <span class="muted">'
                    f'{escape(run.get("profile_description", ""))}</span>'),
        ("status", escape(run["status"])),
        ("host", escape(f'{host.get("hostname", "")} (tier: {host.get("tier", "")})')),
        ("kernel", escape(f'{host.get("kernel", "")} {host.get("kernel_version", "")}')),
        ("CPU", escape(f'{cpu.get("model", "")}'
                       + (f'; {cpu["cpus"]} CPUs' if cpu.get("cpus") else "")
                       + (f'; {" ".join(cpu["fpu_features"])}' if cpu.get("fpu_features")
                          else ""))),
        ("KVM", escape(f'{host.get("kvm_module", "")}; supported XCR0 {kvm or "unknown"} '
                       f'({kvm_names})')),
        ("components exercised", _components_line(run)),
        ("started", escape(f'{run["started"]}; duration {run.get("duration") or "?"} s')),
        ("instances", escape(", ".join(f"{v} {n}" for v, n in counts.items() if n)
                             or "none") + f' of {s.get("instances", 0)}'),
        ("tests", escape(", ".join(f"{v} {n}" for v, n in s.get("tests", {}).items()) or "none")),
    ]
    if s.get("flaky"):
        rows.append(("flaky", escape(f'repeats disagree: {", ".join(s["flaky"])}')))
    if run.get("merged_from"):
        rows.append(("merged from", escape("; ".join(
            f'{m["run_id"]} ({m["profile"]}, {m["status"]}) on {", ".join(m["hosts"])}'
            for m in run["merged_from"]))))
    return (f'<section id="summary"><h1>kvmfpu run {escape(run["run_id"])}</h1>{banner}'
            f'{_kv_table(rows)}</section>')


def _matrix(run: Run) -> str:
    """Tests (program.fixture.variant.test) down, hosts across; a cell is the worst verdict
    of the test's instances on that host, linked to the log of one that has it, and to the
    picture of its failed image comparison when there is one."""
    if not merge.is_multi_host(run):
        return ""
    cols = merge.columns(run)
    cells: dict[str, dict[str, list[tuple[str, int, InstanceResult, int | None]]]] = {}
    for n, e in enumerate(run.instances.values()):
        if e.status == "done" and e.verdict not in (None, V.INTERRUPTED):
            tests = compare.instance_tests(e)
        else:
            tests = [(t.name, t.verdict) for t in e.tests] or [
                ("(instance)", e.verdict or "pending")]
        pictures: dict[str, int] = {}
        for k, (test, _) in enumerate(_images_of(e.to_json())):
            pictures.setdefault(test, k)
        for name, verdict in tests:
            row = f"{e.key} (instance)" if name == "(instance)" else f"{e.program}.{name}"
            cells.setdefault(row, {}).setdefault(merge.column_of(run, e), []).append(
                (verdict, n, e, pictures.get(name)))
    head = "".join(f'<th data-host="{escape(c)}">{escape(c)}<span class="muted">'
                   + "".join(f"<br>{escape(str(x))}" for x in (
                       i.get("hostname") if i.get("hostname") != c else "",
                       merge.cpu_name(i), merge.kernel_release(i), i.get("tier")) if x)
                   + "</span></th>" for c, i in cols.items())
    rows = [f'<tr><td><code>{escape(r)}</code></td>'
            + "".join(_cell(c, cells[r].get(c, [])) for c in cols) + "</tr>" for r in cells]
    return (f'<section id="matrix"><h2>Tests x hosts</h2><table><tr><th>test</th>{head}</tr>'
            + "".join(rows) + "</table></section>")


def _cell(col: str, items: list[tuple[str, int, InstanceResult, int | None]]) -> str:
    if not items:
        return f'<td data-host="{escape(col)}" class="muted">not run here</td>'
    known = [v for v, *_ in items if v in V.VERDICTS]
    worst = V.worst(known) if known else "pending"
    verdict, n, e, picture = next(it for it in items if it[0] == worst)
    title = "; ".join(f"{it[2].id}: {it[0]}" for it in items)
    count = (f' <span class="muted">{sum(1 for it in items if it[0] == worst)}/{len(items)}'
             '</span>' if len(items) > 1 else "")
    diff = f' <a class="diff" href="#img-{n}-{picture}">diff</a>' if picture is not None else ""
    return (f'<td data-host="{escape(col)}" data-verdict="{escape(worst)}"><a class="v '
            f'v-{escape(worst)}" href="{escape(quote(e.log))}" title="{escape(title)}">'
            f'{escape(worst)}</a>{count}{diff}</td>')


def _kernel_log(run: dict[str, Any]) -> str:
    kl = run["kernel_log"]
    if kl.get("error"):
        body = f'<p class="banner">{escape(kl["error"])}</p>'
    elif not kl.get("watched"):
        body = '<p class="banner">Kernel log was not watched.</p>'
    else:
        body = f'<p>Watched {escape(str(kl.get("path")))}: {len(kl["splats"])} splat(s).</p>'
    for host, state in kl.get("remote_hosts", {}).items():
        cls = "" if state.startswith("watched") else ' class="banner"'
        body += f'<p{cls}>Remote host {escape(host)}: kernel log {escape(state)}</p>'
    if kl["splats"]:
        body += "<ul>" + "".join(map(_splat, kl["splats"])) + "</ul>"
    return f'<section id="kernel-log"><h2>Kernel log</h2>{body}</section>'


def _splat(sp: dict[str, Any]) -> str:
    after = sp.get("after_verdict") or []
    running = [i for i in sp["instances"] if i not in after]
    late = f'; just after {escape(", ".join(after))} (verdict kept)' if after else ""
    return (f'<li><code>{escape(sp["line"])}</code> while running: '
            f'{escape(", ".join(running) or "no instance")}{late}</li>')


def _filters(run: dict[str, Any]) -> str:
    boxes = "".join(f'<label><input type="checkbox" value="{v}" checked> {v}</label>'
                    for v in V.VERDICTS + ("pending",))
    return (f'<section id="filters"><h2>Instances</h2>{boxes}<input id="filter-text" '
            f'type="search" placeholder="filter by name, args, diagnostic"> '
            f'<span id="shown">{len(run["instances"])}</span> shown</section>')


def _test_rows(e: dict[str, Any]) -> str:
    rows = []
    for t in e.get("tests", []):
        rows.append(f'<tr><td>{_badge(t["verdict"])}</td><td><code>{escape(t["name"])}</code>'
                    f'</td><td>{escape(t.get("reason", ""))}</td><td>'
                    f'{escape(",".join(t.get("exercised", [])))}</td></tr>')
    if not rows:
        return '<p class="muted">no test results</p>'
    return ('<table><tr><th>verdict</th><th>test</th><th>reason</th><th>exercised</th></tr>'
            + "".join(rows) + "</table>")


def _images_of(e: dict[str, Any]) -> list[tuple[str, xsave_svg.Image]]:
    return [(t["name"], img) for t in e.get("tests", [])
            for img in xsave_svg.images(t.get("records", []))]


def _mismatch_table(img: xsave_svg.Image) -> str:
    rows = "".join(f'<tr><td>{escape(m.get("component", ""))}</td><td>{escape(m.get("reg", ""))}'
                   f'</td><td>{escape(m.get("offset", ""))}</td><td><code>'
                   f'{escape(m.get("expected", ""))}</code></td><td><code>'
                   f'{escape(m.get("actual", ""))}</code></td></tr>' for m in img.mismatches)
    return ('<table><tr><th>component</th><th>register</th><th>offset</th><th>expected</th>'
            f'<th>actual</th></tr>{rows}</table>')


def _instances(run: dict[str, Any]) -> str:
    out = ['<section id="instances"><table>']
    for n, e in enumerate(run["instances"]):
        verdict = e.get("verdict") or "pending"
        diags = e.get("diagnostics", [])
        search = " ".join([e["id"], " ".join(e["command"])] + diags).lower()
        out.append(
            f'<tr class="inst" data-verdict="{escape(verdict)}" data-search="{escape(search)}" '
            f'data-details="d{n}"><td>{_badge(e.get("verdict"))}</td><td><code>'
            f'{escape(e["id"])}</code></td><td>{e.get("duration") or ""}</td><td>'
            f'{escape(",".join(e.get("exercised", [])))}</td><td>'
            f'{escape(diags[0] if diags else "")}</td></tr>')
        details = [f'<p>command: <code>{escape(" ".join(e["command"]))}</code>'
                   f'{" on " + escape(e["host"]) if e.get("host") else ""}; '
                   f'log: <a href="{escape(e["log"])}">{escape(e["log"])}</a></p>',
                   _test_rows(e)]
        if diags:
            details.append("<ul>" + "".join(f"<li>{escape(d)}</li>" for d in diags) + "</ul>")
        for r in e.get("replay", []):
            details.append(f'<p>replay: <code>{escape(e["program"])} {escape(r)}</code></p>')
        for k, (test, img) in enumerate(_images_of(e)):
            details.append(f'<p>{escape(test)}: XSAVE image <code>{escape(img.check)}</code> '
                           f'(<a href="#img-{n}-{k}">picture</a>)</p>' + _mismatch_table(img))
        out.append(f'<tr id="d{n}"><td></td><td colspan="4"><details><summary>details'
                   f'</summary>{"".join(details)}</details></td></tr>')
    out.append("</table></section>")
    return "".join(out)


def _images(run: dict[str, Any]) -> str:
    parts = []
    for n, e in enumerate(run["instances"]):
        for k, (test, img) in enumerate(_images_of(e)):
            parts.append(f'<h3 id="img-{n}-{k}"><code>{escape(e["id"])}</code> {escape(test)} '
                         f'({escape(img.check)})</h3>' + xsave_svg.render(img)
                         + _mismatch_table(img))
    body = "".join(parts) or '<p class="muted">No failed image comparison.</p>'
    return f'<section id="images"><h2>Failed XSAVE image comparisons</h2>{body}</section>'


def _skips(run: dict[str, Any]) -> str:
    reasons: dict[str, list[str]] = {}
    for e in run["instances"]:
        for t in e.get("tests", []):
            if t["verdict"] != V.SKIP:
                continue
            names = reasons.setdefault(t.get("reason") or "(no reason given)", [])
            name = f'{e["program"]} {t["name"]}'
            if name not in names:
                names.append(name)
        if e.get("verdict") == V.SKIP and not e.get("tests"):
            reasons.setdefault("; ".join(e.get("diagnostics", [])) or "(no reason given)",
                               []).append(e["id"])
    not_run = [e["id"] for e in run["instances"] if e["status"] == "pending"]
    if not_run:
        reasons["not run: the run was cut short"] = not_run
    items = "".join(f'<li><b>{escape(r)}</b> ({len(ts)}): <span class="muted">'
                    f'{escape(", ".join(ts[:20]))}{" ..." if len(ts) > 20 else ""}</span></li>'
                    for r, ts in sorted(reasons.items(), key=lambda kv: -len(kv[1])))
    return (f'<section id="skips"><h2>Skipped, and why</h2>'
            f'{"<ul>" + items + "</ul>" if items else "<p>Nothing skipped.</p>"}</section>')


def render(run: dict[str, Any], record: Run | None = None) -> str:
    """The page of a run's JSON view; with its typed record, the hosts x tests matrix of a
    run that has more than one host (or was merged)."""
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>kvmfpu {escape(run['run_id'])}</title><script>{ONERROR}</script>"
            f"<style>{CSS}</style></head><body>"
            + _summary(run) + (_matrix(record) if record else "") + _kernel_log(run)
            + _skips(run) + _images(run) + _filters(run) + _instances(run)
            + f"<script>{JS}</script></body></html>\n")
