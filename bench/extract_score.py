#!/usr/bin/env python3
# Python 3.11; venv made by bench/extract_venv.sh (~/.cache/primer/venv-bench) with the pins:
#   trafilatura==2.3.1 lxml==6.2.1 lxml_html_clean==0.4.7
#   (trafilatura's own dependencies as pip resolved them: courlan==1.4.0 htmldate==1.11.0
#    jusText==3.0.2 charset-normalizer==3.5.3 urllib3==2.8.0 certifi==2026.10.19.post1
#    dateparser==1.5.0 python-dateutil==4.0.0 tld==0.13.2 babel==2.19.0 regex==2026.12.2
#    pytz==2026.6 tzdata==2026.6 tzlocal==5.4.5)
"""Score HTML-to-text extraction against the reStructuredText a Sphinx site was built from.

    extract_score.py --site DIR [--primer FILE.jsonl] [--trafilatura] [--limit N]
                     [--report-misses N] [--json FILE] [--show PAGE]

    PY=$(bench/extract_venv.sh)
    "$PY" bench/extract_score.py --site ../shared/data/sites/python-3.11-docs --trafilatura \
        --primer extracted.jsonl --report-misses 20 --json /tmp/extract_score.json

Calibration on the Python 3.11 docs (496 pages): the whole <body> text (navigation, sidebar,
footer included) scores micro P/R/F1 0.872/0.999/0.931 (macro F1 0.818); the text of
<div role="main"> 0.950/0.998/0.973 (macro F1 0.921); trafilatura 2.3.1 0.985/0.980/0.983
(macro F1 0.954). Recall ~0.999 for the raw page text means the truth holds almost no word
the page lacks; macro F1 separates systems better than micro F1.

Pages: every `_sources/X.rst.txt` under --site whose `X.html` exists (the Python 3.11 docs:
496 of 497 sources; whatsnew/changelog has no HTML).

Systems: `--primer FILE.jsonl` (lines with `url` and `text`; `url` is the page's file path,
absolute, relative to --site, `file://...`, `.../python-3.11-docs/X.html` or an http URL whose
path ends in the page's path; pages without a line score as empty text);
`--trafilatura`: trafilatura.extract(html, output_format="txt"), default settings, and again
with favor_recall=True. Only the extract calls are timed (single process, HTML already in
memory); MB/s counts HTML bytes, MB = 10^6 bytes.

Metrics: tokens = re.findall(r"\\w+", text.lower()); per page, overlap = size of the multiset
(Counter) intersection of system and truth tokens. Micro = sums over pages (overlap/system
tokens, overlap/truth tokens); macro = mean of per-page P, R, F1 (a page where both sides are
empty has P=R=F1=1; one empty side gives 0).

Code blocks (from the reST): indented literal blocks after a paragraph ending in `::`, the
bodies of code-block/code/sourcecode/doctest/testcode/testoutput (without `:hide:`), and
doctest blocks (`>>>` paragraphs outside literal blocks). Each: tabs expanded to 8, dedented,
trailing whitespace stripped per line, blank lines at the ends dropped; in blocks that start
with `>>>`, `# doctest: ...` flags and `<BLANKLINE>` are removed (Sphinx's trim_doctest_flags). A block is *kept* when
its lines occur as whole consecutive lines of the system text (same per-line rstrip; so
indentation and line breaks must match). *Attainable* = kept, in that sense, by the text of one
of the page's <pre> elements (lxml text_content). --report-misses classifies each missed
attainable block, first match wins: blank-lines-dropped (kept once its blank lines are
removed), reindented (kept once every line is stripped on both sides), whitespace-changed
(found once all whitespace runs are collapsed to one space: e.g. joined into a paragraph),
absent (its first line is nowhere, even whitespace-collapsed), partial (anything else).

Ground truth = the reST with its markup stripped, approximating the main text of the page:
  * dropped: comments, targets (`.. _x:`), substitution definitions, docinfo fields before the
    first title (:orphan:, :tocdepth:), and the directives index, toctree, contents (both
    render navigation lists of titles, which extractors are right to drop), highlight,
    module/currentmodule (they only set the module prefix), program, testsetup, testcleanup,
    testcode/testoutput/doctest with :hide:, only (unless "html"), literalinclude (the file
    is not in _sources), include of a file not in _sources, raw, image, figure,
    tabularcolumns, sectionauthor, moduleauthor, audit-event-table, limited-api-list,
    miscnews; directive options (`:noindex:` ...) everywhere.
  * rendered as Sphinx does: admonitions ("Note", "Warning", "See also", "CPython
    implementation detail:" ...) with their content; versionadded/versionchanged/deprecated/
    deprecated-removed ("New in version 3.3: ..."); availability ("Availability: ..." and
    its content); audit-event ("Raises an auditing event X with arguments a, b.");
    object signatures (function, class, method, data, c:function, cmdoption, ...) with
    Sphinx's annotations ("class ", "coroutine ", "classmethod ", "@" ...) and the current
    module as prefix when the object is not nested in a class and its name has no prefix
    of its own (`.. function:: listdir(path='.')` -> `os.listdir(path='.')`, but
    `.. method:: date.replace()` stays); productionlist (its grammar lines); include of a
    file that is in _sources (the wasm-notavail note); footnotes as "[n] text".
  * roles: explicit titles win; `~a.b.c` -> `c`, `!x` -> `x`, func/meth/c:func get `()`;
    :ref: -> the target section's title (labels collected over the whole site; a label not
    directly before a section renders as the label itself); :doc: -> the document's title;
    :pep: -> "PEP 8", :rfc: -> "RFC 2822", :issue: -> "bpo-N", :gh: -> "gh-N", :abbr: ->
    the abbreviation, :file:/:samp: without braces, :menuselection: with "‣".
  * inline: ``literal``, *emph*, **strong**, `text <url>`_, name_, [1]_ ("[1]"; auto-numbered
    [#]_ dropped), |subst| (the file's replace:: and unicode:: definitions, others such as
    |release| left as they are) reduced to their text; backslash escapes removed; "--" and
    "---" to dashes; section adornment, transitions and table borders (lines of punctuation
    only) removed; "Para::" -> "Para:", lone "::" dropped; enumerators "1." / "#." removed
    (HTML numbers lists with CSS); field lists -> "Name: body"; Sphinx info fields as
    rendered: a "Parameters" / "Raises" / "Returns" / "Return type" label per group, then
    "x – body".
Known differences from the rendered page (they affect every system alike): the toctree
lists of the 47 index-like pages are missing, so those pages' precision is low by
construction (contents.html, library/netdata.html ... score F1 < 0.3 for any extractor that
keeps their link lists); text Sphinx adds that is not in the source is missing: C-API
"Return value: New reference." and "Part of the Stable ABI since ...", tutorial section
numbers ("4.1."), footnote reference numbers, literalinclude'd files (email.examples,
reference/grammar), token-list.inc (library/token), the stable-ABI list (c-api/stable),
the audit events table; a :ref: to a non-section label renders as the label; table cells
keep their words but not their layout (no effect on the token metric).
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.parse
from collections import Counter

# ----------------------------------------------------------------------------- reST parsing
ADORN = set("=-`:'\"~^_*+#<>.")
DIRECTIVE = re.compile(r"^\.\.\s+([\w:.+-]+?)\s*::(?:\s+(.*))?$")
SUBST_DEF = re.compile(r"^\.\.\s+\|([^|]+)\|\s+([\w-]+)::\s*(.*)$")
FOOTNOTE = re.compile(r"^\.\.\s+\[([^\]]+)\](?:\s+(.*))?$")
OPTION = re.compile(r"^:([\w-]+):(?:\s+(.*))?$")
BULLET = re.compile(r"^([-*+•]|\d+\.|#\.|\(?[a-zA-Z0-9]\))\s+")
ENUM = re.compile(r"^(?:\d+|#)\.\s+(?=\S)")
FIELD = re.compile(r"^:([^:`\s][^:`]*?):(?:\s+(.*)|$)")
PUNCT_ONLY = re.compile(r"^[\s!-/:-@\[-`{-~]+$")

SKIP = {"index", "toctree", "contents", "highlight", "program", "testsetup", "testcleanup",
        "literalinclude", "raw", "image", "figure", "tabularcolumns", "sectionauthor",
        "moduleauthor", "audit-event-table", "limited-api-list", "miscnews", "meta",
        "default-role", "role", "c:namespace", "c:namespace-push", "c:namespace-pop",
        "highlightlang", "productionlist-group", "target-notes"}
CODE = {"code-block", "code", "sourcecode", "doctest", "testcode", "testoutput"}
ADMONITION = {"note": "Note", "warning": "Warning", "seealso": "See also", "important": "Important",
              "caution": "Caution", "tip": "Tip", "hint": "Hint", "danger": "Danger",
              "attention": "Attention", "error": "Error", "todo": "Todo",
              "impl-detail": "CPython implementation detail:"}
VERSION = {"versionadded": "New in version {}", "versionchanged": "Changed in version {}",
           "deprecated": "Deprecated since version {}"}
PY_OBJ = {"function": "", "method": "", "class": "class ", "exception": "exception ", "data": "",
          "attribute": "", "classmethod": "classmethod ", "staticmethod": "static ",
          "decorator": "@", "decoratormethod": "@", "coroutinefunction": "coroutine ",
          "coroutinemethod": "coroutine ", "abstractmethod": "abstractmethod ",
          "awaitablefunction": "awaitable ", "awaitablemethod": "awaitable ",
          "property": "property "}
OTHER_OBJ = {"c:function", "c:member", "c:type", "c:var", "c:macro", "c:struct", "c:data",
             "c:enum", "c:enumerator", "c:union", "cmdoption", "option", "envvar", "opcode",
             "describe", "object", "pdbcommand", "2to3fixer", "fixer", "monitoring-event"}


def indent(line):
    return len(line) - len(line.lstrip(" "))


def dedent(lines):
    ind = min((indent(l) for l in lines if l.strip()), default=0)
    return [l[ind:] for l in lines]


def norm_block(lines):
    """The code-block normalisation: dedent, rstrip lines, drop blank lines at both ends."""
    lines = [l.rstrip() for l in dedent([l.expandtabs(8) for l in lines])]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def is_adornment(line):
    s = line.rstrip()
    return len(s) >= 2 and s[0] in ADORN and s == s[0] * len(s)


class Doc:
    """One reST source parsed into chunks: ("p", [lines]) prose to inline-render later,
    ("c", text) verbatim code, ("sig", [signatures]). Collects titles, labels, code blocks.
    `sources` maps every document name to its reST, for `.. include::`."""

    def __init__(self, name, text, sources):
        self.name = name                  # e.g. "library/os"
        self.sources = sources
        self.chunks, self.blocks, self.titles, self.styles = [], [], [], []
        self.labels, self.pending, self.subst = {}, [], {}
        self.module = None
        self.footnotes = 0
        self.toctrees = 0
        self.includes = 0
        self.render(text.expandtabs(8).split("\n"), in_class=False, top=True)

    def prose(self, lines):
        if lines:
            self.chunks.append(("p", list(lines)))

    def code(self, lines, trim=None):
        text = norm_block(lines)
        if trim or (trim is None and text.startswith(">>>")):
            # Sphinx's trim_doctest_flags, for pycon literal blocks and doctest blocks
            text = re.sub(r"^\s*<BLANKLINE>", "", text, flags=re.M)
            text = norm_block(re.sub(r"#\s*doctest:.+$", "", text, flags=re.M).split("\n"))
        if text:
            self.chunks.append(("c", text))
            self.blocks.append(text)

    def render(self, lines, in_class, top=False):
        i, n = 0, len(lines)
        while i < n:
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            d = indent(line)
            s = line.strip()
            if s == ".." or s.startswith(".. "):
                j = i + 1
                if s == ".." and (j >= n or not lines[j].strip()):
                    i = j
                    continue
                while j < n and (not lines[j].strip() or indent(lines[j]) > d):
                    j += 1
                self.explicit(s, lines[i + 1:j], in_class)
                i = j
                continue
            if s.startswith(">>>"):                       # doctest block
                j = i
                while j < n and lines[j].strip():
                    j += 1
                self.code(lines[i:j])
                self.pending = []
                i = j
                continue
            j = i                                          # paragraph
            while j < n and lines[j].strip():
                j += 1
            para = lines[i:j]
            if top:
                used = self.take_title(para)
                if used:                                   # what follows a title is parsed anew
                    i += used
                    continue
                if not self.chunks and all(FIELD.match(l) or indent(l) for l in para):
                    i = j                                  # docinfo (:orphan:, :tocdepth:)
                    continue
            i = j
            self.pending = []
            last = para[-1].rstrip()
            if last.endswith("::"):
                if len(para) == 1:
                    m = BULLET.match(para[0].lstrip())
                    p_ind = indent(para[0]) + (len(m.group(0)) if m else 0)
                else:
                    p_ind = indent(para[-1])
                if last.strip() == "::":
                    para = para[:-1]
                elif last.endswith(" ::"):
                    para = para[:-1] + [last[:-3]]
                else:
                    para = para[:-1] + [last[:-1]]
                self.prose(para)
                k = i
                while k < n and not lines[k].strip():
                    k += 1
                if k < n and indent(lines[k]) > p_ind:
                    while k < n and (not lines[k].strip() or indent(lines[k]) > p_ind):
                        k += 1
                    self.code(lines[i:k])
                    i = k
            else:
                self.prose(para)

    def take_title(self, para):
        """A section title at the start of a top-level paragraph: record and emit it, and
        return the number of lines it used (0 if the paragraph does not start with one)."""
        if len(para) >= 3 and is_adornment(para[0]) and is_adornment(para[2]) \
                and para[0].strip()[0] == para[2].strip()[0] and not is_adornment(para[1]):
            style, title, used = (para[0].strip()[0], True), para[1].strip(), 3
        elif len(para) >= 2 and is_adornment(para[1]) and not is_adornment(para[0]) \
                and indent(para[0]) == 0 and len(para[1].strip()) >= min(3, len(para[0].strip())):
            style, title, used = (para[1].strip()[0], False), para[0].strip(), 2
        else:
            return 0
        if style not in self.styles:
            self.styles.append(style)
        self.titles.append((self.styles.index(style) + 1, title))
        for lab in self.pending:
            self.labels[lab] = title
        self.pending = []
        self.prose([title])
        return used

    def explicit(self, s, body, in_class):
        """An explicit markup block: s is its first line (stripped), body the indented rest."""
        if s.startswith(".. _") or s.startswith(".. __"):
            m = re.match(r"^\.\.\s+_`?([^`:]+)`?:\s*$", s)
            if m:
                self.pending.append(m.group(1).strip().lower())
            return
        m = SUBST_DEF.match(s)
        if m:
            name, kind, val = m.groups()
            if kind == "replace":
                self.subst[name] = " ".join([val] + [l.strip() for l in body if l.strip()])
            elif kind == "unicode":
                self.subst[name] = "".join(chr(int(x[2:], 16)) if x.startswith("0x") else x
                                           for x in val.split())
            return
        m = FOOTNOTE.match(s)
        if m:
            label = m.group(1)
            if label.startswith("#") or label == "*":
                self.footnotes += 1
                label = str(self.footnotes)
            if m.group(2):
                self.render(["[%s] %s" % (label, m.group(2))] + dedent(body), in_class)
            else:
                self.prose(["[%s]" % label])
                self.render(dedent(body), in_class)
            return
        m = DIRECTIVE.match(s)
        if not m:                                          # a comment
            return
        self.directive(m.group(1).lower(), (m.group(2) or "").strip(), body, in_class)

    def directive(self, name, arg, body, in_class):
        if name.startswith("py:"):
            name = name[3:]
        header, k = ([arg] if arg else []), 0
        while k < len(body) and body[k].strip() and not OPTION.match(body[k].strip()):
            header.append(body[k].strip())
            k += 1
        opts = {}
        while k < len(body) and body[k].strip():      # options, and their continuation lines
            om = OPTION.match(body[k].strip())
            if om:
                opts[om.group(1)] = om.group(2) or ""
            k += 1
        content = dedent(body[k:])
        if name != "index":
            self.pending = []
        if name == "toctree":
            self.toctrees += 1
        if name in SKIP:
            return
        if name in ("module", "currentmodule"):
            self.module = None if arg in ("", "None") else arg
            return
        if name == "only":
            if "html" in arg and "not" not in arg:
                self.render(content, in_class)
            return
        if name in CODE:
            if "hide" not in opts:
                self.code(content, trim=None if "no-trim-doctest-flags" not in opts else False)
            return
        if name == "include":
            target = arg.lstrip("/") if arg.startswith("/") else \
                os.path.normpath(os.path.join(os.path.dirname(self.name), arg))
            target = re.sub(r"\.(rst|inc|txt)$", "", target)
            if target in self.sources and self.includes < 3:
                self.includes += 1
                self.render(self.sources[target].expandtabs(8).split("\n"), in_class)
                self.includes -= 1
            return
        if name == "productionlist":
            lines = header[1:] if len(header) > 1 and re.fullmatch(r"[\w-]+", header[0]) else header
            self.prose([l[1:] if l.startswith(":") else l.replace(":", " ::=", 1) for l in lines])
            return
        if name in VERSION or name == "deprecated-removed":
            parts = arg.split(None, 2 if name == "deprecated-removed" else 1)
            if name == "deprecated-removed":
                label = "Deprecated since version %s, will be removed in version %s" % (
                    parts[0] if parts else "", parts[1] if len(parts) > 1 else "")
                rest = parts[2] if len(parts) > 2 else ""
            else:
                label = VERSION[name].format(parts[0] if parts else "")
                rest = parts[1] if len(parts) > 1 else ""
            text = [rest] + header[1:] if rest or header[1:] else []
            text = [t for t in text if t]
            has = bool(text) or any(l.strip() for l in content)
            first = label + (": " if has else ".") + (text[0] if text else "")
            self.render([first] + text[1:] + [""] + content, in_class)
            return
        if name == "availability":
            text = " ".join(header)
            self.prose(["Availability: " + text + ("" if text.endswith(".") else ".")])
            self.render(content, in_class)
            return
        if name == "audit-event":
            if any(l.strip() for l in content):
                self.render(content, in_class)
                return
            toks = arg.split()
            ev = toks[0] if toks else ""
            args = [a for a in (toks[1].strip('"').split(",") if len(toks) > 1 else []) if a]
            if not args:
                self.prose(["Raises an auditing event %s with no arguments." % ev])
            else:
                self.prose(["Raises an auditing event %s with argument%s %s." % (
                    ev, "s" if len(args) > 1 else "", ", ".join(args))])
            return
        if name in ADMONITION:
            self.prose([ADMONITION[name]])
            self.render(header + [""] + content, in_class)
            return
        if name in PY_OBJ or name in OTHER_OBJ:
            mod = opts.get("module", self.module)
            sigs = []
            for sig in header:
                sig = re.sub(r"\\(.)", r"\1", sig)
                if name in PY_OBJ:
                    # Sphinx adds the module only where the name has no "Class." prefix
                    bare = "." not in re.split(r"[\s(\[]", sig, 1)[0]
                    prefix = mod + "." if mod and not in_class and bare else ""
                    sig = PY_OBJ[name] + ("async " if "async" in opts else "") + prefix + sig
                    if opts.get("type"):
                        sig += ": " + opts["type"]
                    if opts.get("value"):
                        sig += " = " + opts["value"]
                sigs.append(sig)
            self.chunks.append(("sig", sigs))
            self.render(content, in_class or name in ("class", "exception"))
            return
        # topic, sidebar, rubric, glossary, list-table, ... and unknown directives: their
        # argument and content are text.
        self.prose(header)
        self.render(content, in_class)


# ----------------------------------------------------------------------------- inline markup
INLINE = re.compile(r"""
  (?P<lit>``(?P<lt>.+?)``(?!`))
| (?P<role>:(?P<rn>[A-Za-z][\w.+-]*(?::[\w.+-]+)*):`(?P<rt>(?:[^`\\]|\\.)+?)`(?!`))
| (?P<ref>`(?P<ft>(?:[^`\\]|\\.)+?)`__?(?!\w))
| (?P<itp>`(?P<it>(?:[^`\\]|\\.)+?)`(?::[\w.:+-]+:)?)
""", re.S | re.X)
EXPLICIT_TITLE = re.compile(r"^(.+?)\s*(?<!\\)<([^<>]*)>$", re.S)
CODE_ROLES = {"func", "meth", "c:func", "c:macro"}


class Site:
    def __init__(self, docs):
        self.docs = docs
        self.labels = {}
        for d in docs.values():
            for lab, title in d.labels.items():
                self.labels.setdefault(lab, (d, title))
        self.depth = 0

    def inline(self, text, doc):
        out, pos = [], 0
        for m in INLINE.finditer(text):
            out.append(self.plain(text[pos:m.start()], doc))
            pos = m.end()
            if m.group("lit"):
                out.append(m.group("lt"))
            elif m.group("role"):
                out.append(self.role(m.group("rn").lower(), m.group("rt"), doc))
            elif m.group("ref"):
                t = m.group("ft")
                em = EXPLICIT_TITLE.match(t)
                out.append(unescape(em.group(1) if em else t.strip("<>")))
            else:
                out.append(unescape(m.group("it")))
        out.append(self.plain(text[pos:], doc))
        return "".join(out)

    def plain(self, t, doc):
        t = re.sub(r"\*\*(?=\S)(.+?)(?<=[^\s\\])\*\*", r"\1", t, flags=re.S)
        t = re.sub(r"(?<![\w*\\])\*(?=[^\s*])(.+?)(?<=[^\s\\])\*(?![\w*])", r"\1", t, flags=re.S)
        t = t.replace("---", "—").replace("--", "–")
        t = re.sub(r"\s*\[(?:#[\w-]*|\*)\]_", "", t)
        t = re.sub(r"\[(\d+|[A-Za-z][\w.-]*)\]_", r"[\1]", t)
        t = re.sub(r"(?<![\w`\\])([A-Za-z0-9](?:[\w.+-]*[A-Za-z0-9])?)__?(?!\w)", r"\1", t)
        return re.sub(r"\|([^|\s][^|]*?)\|(?:__?)?", lambda m: self.subst(m, doc), unescape(t))

    def subst(self, m, doc):
        if m.group(1) not in doc.subst or self.depth >= 3:
            return m.group(0)
        self.depth += 1
        try:
            return self.inline(doc.subst[m.group(1)], doc)
        finally:
            self.depth -= 1

    def role(self, name, raw, doc):
        raw = " ".join(raw.split())
        if name.startswith("py:"):
            name = name[3:]
        em = EXPLICIT_TITLE.match(raw)
        if em and name not in ("abbr", "math", "samp", "kbd"):
            return unescape(em.group(1)).lstrip("!")
        t = unescape(raw)
        if name == "ref":
            lab = t.lower()
            if lab in self.labels and self.depth < 3:
                d, title = self.labels[lab]
                self.depth += 1
                try:
                    return self.inline(title, d)
                finally:
                    self.depth -= 1
            return t
        if name == "doc":
            target = t.lstrip("/") if t.startswith("/") else \
                os.path.normpath(os.path.join(os.path.dirname(doc.name), t))
            d = self.docs.get(target)
            if d and d.titles and self.depth < 3:
                self.depth += 1
                try:
                    return self.inline(d.titles[0][1], d)
                finally:
                    self.depth -= 1
            return t
        if name == "pep":
            return "PEP " + t.split("#")[0]
        if name == "rfc":
            return "RFC " + t.split("#")[0]
        if name == "issue":
            return "bpo-" + t
        if name == "gh":
            return "gh-" + t
        if name == "abbr":
            return re.sub(r"\s*\(.*\)$", "", t, flags=re.S)
        if name in ("file", "samp"):
            return re.sub(r"(?<!\\)[{}]", "", t)
        if name == "menuselection":
            return t.replace("-->", "‣")
        if name == "guilabel":
            return re.sub(r"&(?!&)", "", t)
        if name in ("source", "math", "kbd", "term", "envvar", "option", "program", "token",
                    "manpage", "dfn", "command", "mailheader", "mimetype", "newsgroup",
                    "makevar", "regexp", "sub", "sup", "emphasis", "strong", "literal",
                    "pdbcmd", "opcode", "2to3fixer", "cve", "cwe"):
            return t.lstrip("!") if name not in ("math", "kbd", "literal") else t
        # python / C domain cross references
        t = t.lstrip("!")
        if t.startswith("~"):
            t = t[1:].lstrip(".").rsplit(".", 1)[-1]
        t = t.lstrip(".")
        if name in CODE_ROLES and not t.endswith(")"):
            t += "()"
        return t

    def text(self, doc):
        """The page's ground-truth text."""
        out = []
        for kind, val in doc.chunks:
            if kind == "c":
                out.append(val)
            elif kind == "sig":
                out.append("\n".join(val))
            else:
                lines, group = [], None
                for l in val:
                    l = l.strip()
                    if PUNCT_ONLY.match(l):
                        continue
                    l = ENUM.sub("", l)
                    l = re.sub(r"^\|\s", "", l)
                    fm = FIELD.match(l)
                    if fm:
                        g, l = field(fm.group(1), fm.group(2) or "")
                        if g and g != group:
                            lines.append(g)
                        group = g
                    lines.append(l)
                if lines:
                    out.append(self.inline("\n".join(lines), doc))
        return "\n\n".join(out)


def unescape(t):
    return re.sub(r"\\(.)", lambda m: "" if m.group(1) == " " else m.group(1), t, flags=re.S)


def field(name, body):
    """A field-list line as Sphinx renders it: (group label or None, text)."""
    parts = name.split()
    kind, arg = parts[0].lower(), " ".join(parts[1:])
    if kind in ("param", "parameter", "arg", "argument", "key", "keyword"):
        return "Parameters", "%s – %s" % (arg, body)
    if kind == "type":
        return "Parameters", body
    if kind in ("returns", "return"):
        return "Returns", body
    if kind == "rtype":
        return "Return type", body
    if kind in ("raises", "raise", "except", "exception"):
        return "Raises", "%s – %s" % (arg, body)
    if kind in ("var", "ivar", "cvar"):
        return "Variables", "%s – %s" % (arg, body)
    return None, "%s: %s" % (name, body)


# ----------------------------------------------------------------------------- scoring
def tokens(text):
    return Counter(re.findall(r"\w+", text.lower()))


def prf(overlap, sys_n, gt_n):
    if sys_n == 0 and gt_n == 0:
        return 1.0, 1.0, 1.0
    p = overlap / sys_n if sys_n else 0.0
    r = overlap / gt_n if gt_n else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def norm_text(text):
    return "\n" + "\n".join(l.rstrip() for l in text.replace("\r\n", "\n").split("\n")) + "\n"


def kept(block, normed):
    return ("\n" + block + "\n") in normed


def miss_kind(block, normed):
    lines = block.split("\n")
    if kept("\n".join(l for l in lines if l), normed):
        return "blank-lines-dropped"
    stripped = "\n" + "\n".join(l.strip() for l in normed.split("\n")) + "\n"
    if kept("\n".join(l.strip() for l in lines), stripped) or \
            kept("\n".join(l.strip() for l in lines if l), stripped):
        return "reindented"
    flat = " ".join(normed.split())
    if " ".join(block.split()) in flat:
        return "whitespace-changed"
    first = next(l for l in lines if l.strip())
    if " ".join(first.split()) not in flat:
        return "absent"
    return "partial"


def page_key(url, site):
    """The page path relative to the site for a JSONL `url`, or None."""
    u = urllib.parse.urlsplit(url)
    base = os.path.basename(os.path.normpath(site))
    if u.scheme in ("http", "https"):
        path = urllib.parse.unquote(u.path).lstrip("/")
        if not path or path.endswith("/"):
            path += "index.html"
        return path, True
    path = urllib.parse.unquote(u.path) if u.scheme == "file" else url
    if os.path.isabs(path):
        rel = os.path.relpath(os.path.normpath(path), os.path.abspath(site))
        if not rel.startswith(".."):
            return rel, False
    marker = "/" + base + "/"
    if marker in "/" + path:
        return ("/" + path).rsplit(marker, 1)[1], False
    if not os.path.isabs(path):
        return os.path.normpath(path), False
    return None, False


def load_primer(path, site, pages):
    known = set(pages)
    texts, stats = {}, Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            stats["lines"] += 1
            key, suffix_ok = page_key(rec.get("url") or "", site)
            if key not in known and suffix_ok and key:
                parts = key.split("/")
                key = next(("/".join(parts[i:]) for i in range(len(parts))
                            if "/".join(parts[i:]) in known), None)
            if key not in known:
                stats["unmatched_lines"] += 1
                continue
            if key in texts:
                stats["duplicate_lines"] += 1
                continue
            texts[key] = rec.get("text") or ""
    stats["pages_missing"] = sum(1 for p in pages if p not in texts)
    return texts, dict(stats)


def run_trafilatura(htmls, **kw):
    import trafilatura
    out, spent = {}, 0.0
    for html in list(htmls.values())[:1]:      # warm-up (lazy imports, caches), untimed
        trafilatura.extract(html, output_format="txt", **kw)
    for page, html in htmls.items():
        t0 = time.perf_counter()
        text = trafilatura.extract(html, output_format="txt", **kw)
        spent += time.perf_counter() - t0
        out[page] = text or ""
    return out, spent


def pre_texts(html_bytes):
    import lxml.html
    root = lxml.html.fromstring(html_bytes)
    return [norm_text(p.text_content().expandtabs(8)) for p in root.iter("pre")]


# ----------------------------------------------------------------------------- main
def load_docs(site):
    """All reST sources parsed ({name: Doc}) and the sorted names that have an HTML page."""
    src = os.path.join(site, "_sources")
    sources, pages = {}, []
    for dirpath, _, files in os.walk(src):
        for fn in files:
            if not fn.endswith(".rst.txt"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, fn), src)[:-len(".rst.txt")]
            with open(os.path.join(dirpath, fn), encoding="utf-8") as f:
                sources[rel] = f.read()
            if os.path.exists(os.path.join(site, rel + ".html")):
                pages.append(rel)
    return {name: Doc(name, text, sources) for name, text in sources.items()}, sorted(pages)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--site", required=True)
    ap.add_argument("--primer", metavar="FILE.jsonl")
    ap.add_argument("--trafilatura", action="store_true")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--report-misses", type=int, default=0, metavar="N")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--show", metavar="PAGE", help="print the ground truth and each system's "
                    "text for one page (e.g. library/os.html)")
    a = ap.parse_args()

    site = a.site.rstrip("/")
    docs, pages = load_docs(site)
    if a.limit:
        pages = pages[:a.limit]
    sitemaps = Site(docs)
    keys = [p + ".html" for p in pages]

    htmls, raw = {}, {}
    for p, k in zip(pages, keys):
        with open(os.path.join(site, k), "rb") as f:
            raw[k] = f.read()
        htmls[k] = raw[k].decode("utf-8", errors="replace")
    mb = sum(len(b) for b in raw.values()) / 1e6

    gt, blocks, attain = {}, {}, {}
    for p, k in zip(pages, keys):
        gt[k] = sitemaps.text(docs[p])
        pres = pre_texts(raw[k])
        blocks[k] = docs[p].blocks
        attain[k] = [any(kept(b, t) for t in pres) for b in blocks[k]]
    gt_tok = {k: tokens(gt[k]) for k in keys}

    systems = {}                       # name -> (texts, seconds or None, extra stats)
    if a.primer:
        texts, st = load_primer(a.primer, site, keys)
        systems["primer"] = (texts, None, st)
    if a.trafilatura:
        t, s = run_trafilatura(htmls)
        systems["trafilatura"] = (t, s, {})
        t, s = run_trafilatura(htmls, favor_recall=True)
        systems["trafilatura (favor_recall)"] = (t, s, {})

    if a.show:
        k = a.show if a.show.endswith(".html") else a.show + ".html"
        if k[:-5] not in docs:
            sys.exit("--show: no source for page %s" % k)
        print("=" * 30, "ground truth", k)
        print(gt.get(k) or sitemaps.text(docs[k[:-5]]))
        for name, (texts, _, _) in systems.items():
            print("=" * 30, name, k)
            print(texts.get(k, ""))

    n_blocks = sum(len(b) for b in blocks.values())
    n_att = sum(sum(x) for x in attain.values())
    report = {"site": os.path.abspath(site), "pages": len(keys), "html_mb": round(mb, 3),
              "ground_truth": {"tokens": sum(sum(c.values()) for c in gt_tok.values()),
                               "code_blocks": n_blocks, "attainable": n_att,
                               "pages_with_toctree": sum(1 for p in pages if docs[p].toctrees)},
              "systems": {}, "per_page": []}
    per_page = {k: {"page": k, "truth_tokens": sum(gt_tok[k].values()),
                    "code_blocks": len(blocks[k]), "attainable": sum(attain[k]), "systems": {}}
                for k in keys}
    misses = {}
    for name, (texts, secs, st) in systems.items():
        ov = sn = gn = 0
        macro = [0.0, 0.0, 0.0]
        kept_att = kept_all = 0
        kinds, miss_list = Counter(), []
        for k in keys:
            text = texts.get(k, "")
            tc = tokens(text)
            o = sum((tc & gt_tok[k]).values())
            s_n, g_n = sum(tc.values()), sum(gt_tok[k].values())
            ov, sn, gn = ov + o, sn + s_n, gn + g_n
            p, r, f = prf(o, s_n, g_n)
            macro = [macro[0] + p, macro[1] + r, macro[2] + f]
            normed = norm_text(text)
            kp = 0
            for b, att in zip(blocks[k], attain[k]):
                ok = kept(b, normed)
                kept_all += ok
                if att:
                    kept_att += ok
                    kp += ok
                    if not ok:
                        kind = miss_kind(b, normed)
                        kinds[kind] += 1
                        miss_list.append((k, kind, b))
            per_page[k]["systems"][name] = {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4),
                                            "tokens": s_n, "overlap": o, "code_kept": kp}
        p, r, f = prf(ov, sn, gn)
        nk = len(keys) or 1
        rep = {"micro": {"p": p, "r": r, "f1": f},
               "macro": {"p": macro[0] / nk, "r": macro[1] / nk, "f1": macro[2] / nk},
               "tokens": sn, "overlap": ov, "code_kept_of_attainable": kept_att,
               "code_kept_total": kept_all, "code_miss_kinds": dict(kinds)}
        if secs is not None:
            rep.update(seconds=secs, pages_per_s=len(keys) / secs, mb_per_s=mb / secs)
        rep.update(st)
        report["systems"][name] = rep
        misses[name] = miss_list
    report["per_page"] = list(per_page.values())

    print("site %s: %d pages, %.1f MB HTML; truth %d tokens; code blocks %d, attainable %d; "
          "%d pages have a toctree (not in the truth)" % (
              site, len(keys), mb, report["ground_truth"]["tokens"], n_blocks, n_att,
              report["ground_truth"]["pages_with_toctree"]))
    print("%-28s %-20s  %-20s  %-10s %s" % ("", "------- micro ------", "------- macro ------",
                                              "code", "------- speed -------"))
    print("%-28s %6s %6s %6s  %6s %6s %6s  %-10s %8s %7s %7s" % (
        "system", "P", "R", "F1", "P", "R", "F1", "kept/att", "pages/s", "MB/s", "secs"))
    for name, rep in report["systems"].items():
        mi, ma = rep["micro"], rep["macro"]
        speed = ("%8.1f %7.2f %7.1f" % (rep["pages_per_s"], rep["mb_per_s"], rep["seconds"])
                 if "seconds" in rep else "%8s %7s %7s" % ("-", "-", "-"))
        print("%-28s %6.3f %6.3f %6.3f  %6.3f %6.3f %6.3f  %4d/%-5d %s" % (
            name, mi["p"], mi["r"], mi["f1"], ma["p"], ma["r"], ma["f1"],
            rep["code_kept_of_attainable"], n_att, speed))
    for name, rep in report["systems"].items():
        extra = ", ".join("%s %s" % (k, v) for k, v in sorted(rep["code_miss_kinds"].items()))
        line = "%s: attainable code blocks missed: %s" % (name, extra or "none")
        if name == "primer":
            line += "; jsonl lines %d, unmatched %d, duplicate %d, pages missing %d" % (
                rep.get("lines", 0), rep.get("unmatched_lines", 0),
                rep.get("duplicate_lines", 0), rep.get("pages_missing", 0))
        print(line)
    if a.report_misses:
        for name, ms in misses.items():
            print("\n--- %s: first %d of %d missed attainable code blocks" % (
                name, min(a.report_misses, len(ms)), len(ms)))
            for k, kind, b in ms[:a.report_misses]:
                print("%s [%s]" % (k, kind))
                for l in b.split("\n")[:4]:
                    print("    | " + l)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
