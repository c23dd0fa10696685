"""HTML building blocks and the page shell of ``report.html``.

One self-contained file: CSS inline, every image a ``data:`` URI, no fonts, scripts or styles
fetched from anywhere, so the report opens from an e-mail attachment or an air-gapped share.
A few lines of inline JavaScript check the page after load (every section present, every image
decoded, no script error) and write the verdict into ``#render-check``: the headless-browser
test reads it back, and a reader sees it in the footer.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}nav{padding:8px 32px;background:#e8ecf2;position:sticky;top:0}
nav a{margin-right:18px;color:#1f3a5f;text-decoration:none;font-weight:600}
main{padding:8px 32px 32px}section{background:#fff;border-radius:8px;padding:16px 24px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{margin-top:4px;color:#1f3a5f}h3{margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}th,td{border:1px solid #d5dbe3;padding:4px 10px;text-align:right}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid figure{margin:0;max-width:100%}
figure img{max-width:100%;border:1px solid #d5dbe3;border-radius:4px}figcaption{font-size:12px;color:#55606e}
.side{display:grid;grid-template-columns:1fr 1fr;gap:16px}.note{color:#55606e;font-size:13px}
.good{color:#1a7f37;font-weight:600}.bad{color:#b42318;font-weight:600}footer{padding:8px 32px;color:#55606e;font-size:12px}
"""

CHECK_JS = """
(function(){
  var errors=[];
  window.addEventListener('error',function(e){
    var t=e.target;errors.push(t&&t.tagName?('cannot load '+t.tagName.toLowerCase()+' '+(t.alt||'')):String(e.message));
  },true);
  window.addEventListener('load',function(){
    var want=(document.body.getAttribute('data-sections')||'').split(' ').filter(Boolean);
    var missing=want.filter(function(id){var s=document.getElementById(id);return !s||s.offsetHeight<20;});
    var imgs=Array.prototype.slice.call(document.images);
    var broken=imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0);});
    var ok=!errors.length&&!missing.length&&!broken.length;
    var el=document.getElementById('render-check');
    el.setAttribute('data-status',ok?'ok':'error');
    el.textContent=(ok?'render check ok: ':'render check FAILED: ')+(want.length-missing.length)+'/'+want.length+
      ' sections, '+(imgs.length-broken.length)+'/'+imgs.length+' images'+
      (missing.length?'; missing sections: '+missing.join(', '):'')+(errors.length?'; errors: '+errors.join('; '):'');
  });
})();
"""


@dataclass
class Section:
    """One titled part of the report; ``id`` is its anchor and what the render check looks for."""

    id: str
    title: str
    body: str


class Raw(str):
    """Marks a string as HTML that ``table`` must not escape."""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def fmt(value: object, digits: int = 3) -> Raw:
    """Numbers to fixed digits (NaN and None as an en dash), anything else as escaped text."""
    if value is None:
        return Raw("&ndash;")
    if isinstance(value, float):
        return Raw("&ndash;" if value != value else f"{value:.{digits}f}")
    return Raw(esc(value))


def ci(metric: dict[str, float] | None, digits: int = 3) -> Raw:
    """``0.951 [0.890, 0.990]`` from a metrics.json entry."""
    if not metric:
        return Raw("&ndash;")
    return Raw(
        f"{fmt(metric.get('value'), digits)} [{fmt(metric.get('ci_low'), digits)}, {fmt(metric.get('ci_high'), digits)}]"
    )


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table; cells that are already HTML (from ``fmt``/``ci``) pass through, other text is escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Raw) else fmt(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(uri: str | None, caption: str, width: int | None = None) -> str:
    if not uri:
        return f'<p class="note">{esc(caption)}: not available</p>'
    style = f' style="width:{width}px"' if width else ""
    return f'<figure{style}><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def page(title: str, subtitle: str, sections: Sequence[Section], footer: str) -> str:
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    ids = " ".join(s.id for s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{esc(title)}</title>'
        f"<style>{CSS}</style><script>{CHECK_JS}</script></head>"
        f'<body data-sections="{ids}"><header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>'
        f"<nav>{nav}</nav><main>{body}</main>"
        f'<footer>{esc(footer)} &middot; <span id="render-check" data-status="pending">render check pending</span></footer>'
        "</body></html>\n"
    )
