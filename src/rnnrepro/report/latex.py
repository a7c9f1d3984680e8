"""LaTeX for the report: escaping, a Jinja2 environment that escapes by default, and the
PDF build (latexmk with pdflatex where it is installed, else tectonic).

`escape` turns any value into pure-ASCII LaTeX that prints every character visibly under
PREAMBLE (T1 + TS1 fonts, pdflatex or lualatex):
  * PASS (letters, digits, space and ``!()*+,-./:;=?@``) goes through unchanged;
  * LaTeX specials and the other ASCII punctuation become text commands (exact glyphs:
    ``'`` is a straight quote, ``--`` stays two hyphens, ``<<`` stays two signs);
  * typographic quotes, dashes, Latin letters with one accent, etc. become T1/TS1 commands;
  * a newline prints as a pilcrow, a tab as an arrow;
  * everything the fonts cannot print (Cyrillic, CJK, emoji, control characters, the BOM)
    becomes a placeholder: U+4E2D between angle brackets, in typewriter type;
  * a word longer than LONG_WORD characters (a run without spaces: a path, a prompt of one
    long word) may break after any character, preferably after ``/ _ . -`` and the like, so
    that text from the config or the corpus never runs past the margin, whatever its length.

Templates use ((( value ))), ((* statement *)) and ((= comment =)); a value is escaped unless
it is Latex (filters num, pct, sample, tt, latex, path; macros and ((* set *)) blocks); the
global ((( preamble ))) holds PREAMBLE, and table_row() writes a table row whose long cells
(filters sample_cell, text_cell) are cut into several rows so that a page can break inside.
"""

import contextlib
import dataclasses
import functools
import os
import re
import shutil
import signal
import subprocess
import unicodedata
from numbers import Integral, Real
from pathlib import Path

import jinja2
import jinja2.ext
from markupsafe import Markup

from rnnrepro.files import atomic_write
from rnnrepro.report.words import plural

PREAMBLE = r"""\usepackage[T1]{fontenc}
\usepackage[utf8]{inputenc}
\usepackage{lmodern}
\usepackage{textcomp}
"""

PASS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !()*+,-./:;=?@")

# pairs the T1 fonts would merge into one glyph (-- is an en dash, !‘ an inverted !), kept
# apart by a kern: an empty group is not enough (pdfTeX looks through the text commands,
# LuaTeX ligatures skip groups)
LIGATURES = {"--", "–-", ",,", "<<", ">>", "‘‘", "’’", "!‘", "?‘"}
_LIGATURE_BREAK = r"\kern0pt "
LINE = 500  # long output is split into source lines of about this length, by "%" + newline
LONG_WORD = 20  # a run of more characters without a space may break after any of them
BREAK_AFTER = frozenset("/_.,:;-+=@|&)]}\\")  # where a break inside a word reads as a seam
_BREAK = r"\allowbreak{}"
_BREAK_INSIDE = r"\penalty200{}"  # allowed, but TeX prefers a break after BREAK_AFTER

TABLE = {
    # LaTeX specials and ASCII characters whose T1 glyph or catcode is not the character
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "%": r"\%", "$": r"\$", "&": r"\&",
    "#": r"\#", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "[": "{[}", "]": "{]}", '"': r"\textquotedbl{}", "'": r"\textquotesingle{}",
    "`": r"\textasciigrave{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "\n": r"\textparagraph{}", "\t": r"\textrightarrow{}",
    # spaces
    "\u00a0": "~", "\u2009": r"\,", "\u202f": r"\,", "\u2002": r"\enspace{}", "\u2003": r"\quad{}",
    # quotes, dashes, punctuation
    "‘": r"\textquoteleft{}", "’": r"\textquoteright{}", "“": r"\textquotedblleft{}",
    "”": r"\textquotedblright{}", "‚": r"\quotesinglbase{}", "„": r"\quotedblbase{}",
    "«": r"\guillemotleft{}", "»": r"\guillemotright{}", "‹": r"\guilsinglleft{}",
    "›": r"\guilsinglright{}", "‐": "-", "–": r"\textendash{}", "—": r"\textemdash{}",
    "−": r"\textminus{}", "…": r"\textellipsis{}", "•": r"\textbullet{}",
    "·": r"\textperiodcentered{}",
    "¡": r"\textexclamdown{}", "¿": r"\textquestiondown{}", "†": r"\textdagger{}",
    "‡": r"\textdaggerdbl{}", "§": r"\S{}", "¶": r"\P{}", "⟨": r"\textlangle{}",
    "⟩": r"\textrangle{}",
    # symbols
    "©": r"\textcopyright{}", "®": r"\textregistered{}", "™": r"\texttrademark{}",
    "√": r"\ensuremath{\surd}", "°": r"\textdegree{}", "±": r"\textpm{}", "×": r"\texttimes{}",
    "÷": r"\textdiv{}",
    "µ": r"\textmu{}", "‰": r"\textperthousand{}", "¬": r"\textlnot{}", "¦": r"\textbrokenbar{}",
    "€": r"\texteuro{}", "£": r"\textsterling{}", "¥": r"\textyen{}", "¢": r"\textcent{}",
    "¤": r"\textcurrency{}", "ª": r"\textordfeminine{}", "º": r"\textordmasculine{}",
    "¹": r"\textonesuperior{}", "²": r"\texttwosuperior{}", "³": r"\textthreesuperior{}",
    "¼": r"\textonequarter{}", "½": r"\textonehalf{}", "¾": r"\textthreequarters{}",
    "←": r"\textleftarrow{}", "→": r"\textrightarrow{}", "↑": r"\textuparrow{}",
    "↓": r"\textdownarrow{}", "℃": r"\textcelsius{}",
    # letters without a decomposition
    "ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ø": r"\o{}",
    "Ø": r"\O{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "ȷ": r"\j{}", "ð": r"\dh{}",
    "Ð": r"\DH{}", "þ": r"\th{}", "Þ": r"\TH{}", "đ": r"\dj{}", "Đ": r"\DJ{}", "ŋ": r"\ng{}",
    "Ŋ": r"\NG{}", "ĳ": r"\ij{}", "Ĳ": r"\IJ{}",
}

# combining mark -> accent command, for letters that decompose to ASCII letter + one mark
ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=",
           "\u0306": "u", "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H",
           "\u030c": "v", "\u0323": "d", "\u0327": "c", "\u0328": "k", "\u0331": "b"}
_BELOW = set("dckb")


class Latex(Markup):
    """LaTeX source, never escaped again; what the template filters return. Like Markup,
    `+`, `%`, `.format` and `.join` escape their plain-str operands (with `escape`)."""

    __slots__ = ()

    @classmethod
    def escape(cls, s):
        return cls(escape(s))


def placeholder(ch):
    """The visible stand-in for a character the fonts cannot print: U+XXXX in angle brackets."""
    return rf"\texttt{{\textlangle U+{ord(ch):04X}\textrangle}}"


def _char(ch):
    if ch in PASS:
        return ch
    if ch in TABLE:
        return TABLE[ch]
    d = unicodedata.normalize("NFD", ch)
    if len(d) == 2 and d[0].isascii() and d[0].isalpha() and d[1] in ACCENTS:
        acc, base = ACCENTS[d[1]], d[0]
        if base in "ij" and acc not in _BELOW:
            base = "\\" + base  # dotless i/j under an accent above
        return rf"\{acc}{{{base}}}"
    return placeholder(ch)


def _word_breaks(text, seams=False):
    """{index: LaTeX} of the line breaks allowed after a character inside a word (a run
    without spaces): after every character of a word longer than LONG_WORD, and with `seams`
    after each BREAK_AFTER character of any word (names and paths in typewriter type)."""
    breaks = {}
    for word in re.finditer(r"[^ ]+", text):
        long = word.end() - word.start() > LONG_WORD
        for i in range(word.start(), word.end() - 1):
            if text[i] in BREAK_AFTER and (long or seams):
                breaks[i] = _BREAK
            elif long:
                breaks[i] = _BREAK_INSIDE
    return breaks


def _translate(text, space, seams=False):
    out, width = [], 0
    breaks = _word_breaks(text, seams)
    for i, ch in enumerate(text):
        piece = space if ch == " " else _char(ch)
        if width >= LINE and not piece.startswith(" "):
            out.append("%\n")  # TeX cannot read a source line over 200000 characters
            width = 0
        out.append(piece)
        width += len(piece)
        if text[i:i + 2] in LIGATURES:
            out.append(_LIGATURE_BREAK)
            width += len(_LIGATURE_BREAK)
        if i in breaks:
            out.append(breaks[i])
            width += len(breaks[i])
    return "".join(out)


def escape(value):
    """Any value as LaTeX body text (pure ASCII str); None is "", Latex/Markup stays as is."""
    if value is None:
        return ""
    if hasattr(value, "__html__"):
        return str(value.__html__())
    return _translate(str(value), " ")


def escape_sample(text, breaks=False, visible_spaces=False):
    """Generated text with every character visible: spaces never collapse (each is `\\ `, or
    the ␣ mark with `visible_spaces`, which also lets a line break after any character),
    newline is a pilcrow (followed by a line break if `breaks`), tab an arrow."""
    if text is None or hasattr(text, "__html__"):
        return escape(text)
    if visible_spaces:  # no real spaces left to break at: allow a break after any character
        return r"\allowbreak{}".join(_translate(ch, r"\textvisiblespace{}") for ch in str(text))
    out = _translate(str(text), "\\ ")
    return out.replace(TABLE["\n"], TABLE["\n"] + r"\newline ") if breaks else out


def tt(value):
    """A name or path in typewriter type (\\texttt) that may break after / _ . - and the like,
    and anywhere in a word longer than LONG_WORD: a study name or a file name from the config
    fits any column it is set in."""
    if value is None or hasattr(value, "__html__"):
        return rf"\texttt{{{escape(value)}}}"
    return rf"\texttt{{{_translate(str(value), ' ', seams=True)}}}"


ROW_LINES = 20  # the most lines a long cell puts in one table row


@dataclasses.dataclass(frozen=True)
class Cell:
    """A table cell that table_row may cut across several rows, for a column of `chars`
    characters a line: generated text (`sample`: typewriter type, every character visible,
    cut at whole lines) or prose (escaped, cut after a space where there is one)."""

    text: str
    chars: int
    sample: bool

    def pieces(self, lines):
        size = max(1, lines * self.chars)
        text, out = self.text or "", []
        while len(text) > size:
            cut = size if self.sample else (text.rfind(" ", 1, size + 1) + 1 or size)
            out.append(text[:cut])
            text = text[cut:]
        return [*out, text]

    def latex(self, piece):
        return escape_sample(piece, visible_spaces=True) if self.sample else escape(piece.strip())


def sample_cell(text, chars):
    """Generated text for table_row, in a column `chars` typewriter characters wide."""
    return Cell(text, chars, True)


def text_cell(text, chars):
    """Prose for table_row, in a column of about `chars` characters a line."""
    return Cell(text, chars, False)


def table_row(cells, lines=ROW_LINES):
    """One row of a longtable (cells joined by &, ended by \\\\), cut into several rows where a
    Cell holds more than `lines` lines: longtable breaks a page only between rows, so one row
    taller than the page would run past its bottom. The other cells fill the first row."""
    parts = [c.pieces(lines) if isinstance(c, Cell) else [c] for c in cells]
    rows = []
    for k in range(max(map(len, parts))):
        row = []
        for c, p in zip(cells, parts):
            if k >= len(p):
                row.append("")
            else:
                row.append(c.latex(p[k]) if isinstance(c, Cell) else escape(p[k]))
        rows.append(" & ".join(row) + r" \\")
    return Latex("\n".join(rows))


def raw(value):
    """Mark a string as LaTeX source, inserted without escaping (the |latex filter)."""
    return Latex(value)


def path(value):
    """A file name or label key, verbatim: \\includegraphics{((( p|path )))}, \\label{...}.
    Only letters, digits and _ . / : + - are accepted (escaping would change the name)."""
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_./:+-]+", text):
        raise ValueError(f"{text!r} cannot be a LaTeX file name or label: use only letters, "
                         "digits and _ . / : + -")
    return text


_MINUS = r"\ensuremath{-}"  # a true minus sign in text and in math


def _group(digits):
    """Thin spaces between thousands from five digits on (as siunitx does)."""
    if len(digits) < 5:
        return digits
    head = len(digits) % 3 or 3
    return r"\,".join([digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)])


def _signed(text):
    if float(text) == 0:
        text = text.lstrip("-")  # no "-0.0"
    sign, text = (_MINUS, text[1:]) if text.startswith("-") else ("", text)
    whole, dot, frac = text.partition(".")
    return sign + _group(whole) + dot + frac


def num(value, digits=3):
    """A number for text or math: ints exact with thin-space groups (540\\,241), floats to
    `digits` significant digits (trailing zeros kept; whole numbers >= 10**digits in full;
    below 1e-4 or from 1e15 as m\\times10^{e}); None -> "--"."""
    if value is None:
        return "--"
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # StrictUndefined: the error names the variable
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"num() needs a number, got {value!r}")
    if isinstance(value, Integral):
        return _signed(str(int(value)))
    v = float(value)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return r"\ensuremath{-\infty}" if v < 0 else r"\ensuremath{\infty}"
    text = f"{v or 0.0:#.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        if 0 < int(exp) < 15:
            return _signed(str(round(v)))
        return rf"\ensuremath{{{mantissa.rstrip('.')}\times10^{{{int(exp)}}}}}"
    return _signed(text.rstrip("."))


def pct(value, digits=1):
    """A fraction as a percentage with `digits` decimals: 0.7034 -> 70.3\\,\\%; None -> "--"."""
    if value is None:
        return "--"
    return _signed(f"{100 * float(value):.{digits}f}") + r"\,\%"


def join(items, sep=""):
    """Jinja's join, LaTeX-aware: items are escaped unless already Latex; `sep` is LaTeX."""
    return Latex(sep).join(items)


def _finalize(value):
    return value if hasattr(value, "__html__") else Latex(escape(value))


def _filter(func):
    """The function as a template filter: its LaTeX comes out as Latex, not escaped again."""
    return functools.wraps(func)(lambda *args, **kwargs: Latex(func(*args, **kwargs)))


class _ParenBeforeTag(jinja2.ext.Extension):
    """A "(" right before a tag is text: "(((( n )))" means "(" + "((( n )))", not "(((" +
    "( n )" followed by a stray ")". Such a "(" is written {(} (same glyph in LaTeX)."""

    def preprocess(self, source, name, filename=None):
        return re.sub(r"\((?=\(\([(*=])", "{(}", source)


class _Template(jinja2.Template):
    def render(self, *args, **kwargs):
        return str(super().render(*args, **kwargs))  # a plain str, not Latex


def environment(template_dir):
    """Jinja2 for LaTeX: ((( var ))), ((* block *)), ((= comment =)); every ((( value ))) is
    escaped unless it is Latex/Markup (filters |latex or |safe); undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        variable_start_string="(((", variable_end_string=")))",
        block_start_string="((*", block_end_string="*))",
        comment_start_string="((=", comment_end_string="=))",
        line_statement_prefix=None, line_comment_prefix=None,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        autoescape=False, finalize=_finalize, undefined=jinja2.StrictUndefined,
        extensions=[_ParenBeforeTag],
    )
    # what a macro, a call block or a ((* set *)) block outputs is LaTeX, not text to escape
    env.concat = lambda parts: Latex("".join(parts))
    env.template_class = _Template
    env.filters.update(escape=_filter(escape), e=_filter(escape), sample=_filter(escape_sample),
                       num=_filter(num), pct=_filter(pct), path=_filter(path), tt=_filter(tt),
                       latex=raw, join=join, sample_cell=sample_cell, text_cell=text_cell,
                       plural=plural)
    env.globals.update(preamble=Latex(PREAMBLE), table_row=table_row)
    return env


class LatexError(RuntimeError):
    """LaTeX failed; the message holds the first error from the log and the source line."""


GENERATED = (".aux", ".bbl", ".bcf", ".blg", ".fdb_latexmk", ".fls", ".lof", ".log", ".lot",
             ".nav", ".out", ".pdf", ".run.xml", ".snm", ".synctex.gz", ".toc", ".vrb", ".xdv")
ENGINES = {"pdflatex": "-pdf", "lualatex": "-lualatex"}  # through latexmk; or "tectonic"
NO_TEX = ("no TeX on PATH (latexmk with pdflatex, or tectonic). Install TeX Live (Debian: latexmk "
          "texlive-latex-extra texlive-fonts-recommended lmodern), or tectonic without root "
          "(conda install -c conda-forge tectonic), or run Snakemake with --sdm conda")


def tex_engine():
    """The engine compile_pdf uses where none is named: pdflatex through latexmk where both are
    on PATH, else tectonic, else None (no TeX here)."""
    if shutil.which("latexmk") and shutil.which("pdflatex"):
        return "pdflatex"
    return "tectonic" if shutil.which("tectonic") else None


_FILE_LINE = re.compile(r"^(?P<file>[^\s:!][^:]*):(?P<line>\d+): ", re.M)


def _first_error(log, tex):
    """The first error in a TeX log with its context, and the source line it points at."""
    lines = log.splitlines()
    start = next((i for i, s in enumerate(lines)
                  if s.startswith("! ") or ")! " in s or _FILE_LINE.match(s)), None)
    if start is None:
        return None
    if ")! " in lines[start]:  # "(/path/file.fd)! Fatal error" on the terminal
        lines[start] = "! " + lines[start].split(")! ", 1)[1]
    m = _FILE_LINE.match(lines[start])
    if "Runaway argument?" in lines[max(0, start - 2):start]:  # a missing }: show the argument
        start = lines.index("Runaway argument?", max(0, start - 2))
    end = min(len(lines), start + 14)
    for j in range(start, end):  # up to the l.NN context line and the one after it
        if lines[j].startswith("Here is how much"):
            end = j
            break
        if re.match(r"l\.\d+ ", lines[j]):
            end = j + 2
            break
    msg = "\n".join(lines[start:end]).rstrip()
    src = tex.read_text(encoding="utf-8", errors="replace").splitlines()
    if m and Path(m["file"]).name == tex.name and 0 < int(m["line"]) <= len(src):
        n = int(m["line"])
        return msg + f"\n{tex.name}:{n}: {src[n - 1]}"
    runaway = re.search(r"^\{?([^\s\\{}]*).*\n! File ended while scanning use of (\\\w+)",
                        msg, re.M)
    if runaway:  # a missing } has no line number: find where the unclosed argument starts
        needle = runaway[2] + "{" + runaway[1]
        for n, s in enumerate(src, 1):
            if needle in s:
                return msg + f"\n{tex.name}:{n}: {s}   (the unclosed argument probably starts here)"
    return msg


_OVERFULL = re.compile(r"^Overfull \\([hv]box) \((\d+(?:\.\d*)?)pt too (?:wide|high)\).*$", re.M)
OVERFULL_TOLERANCE = 3.0  # points an hbox may stick out unseen (TeX's own \hfuzz is 0.1 pt)


def overfull_boxes(log, tolerance=OVERFULL_TOLERANCE):
    """What in a TeX log ran past the margins: each Overfull \\hbox wider than `tolerance`
    points, and every Overfull \\vbox (a page filled past its bottom), each with the start of
    the next log line (the box's text). A longtable row taller than the page runs off it
    without a word in the log: table_row keeps rows short."""
    found = []
    for m in _OVERFULL.finditer(log):
        if m[1] == "vbox" or float(m[2]) > tolerance:
            context = log[m.end() + 1:].split("\n", 1)[0].strip()
            found.append(f"{m[0]}: {context[:150]}" if context else m[0])
    return found


def build_log(tex_path, build_dir=None):
    """The log of compile_pdf's build of `tex_path` (in `build_dir`, default build/ beside it)."""
    tex = Path(tex_path).resolve()
    return (Path(build_dir).resolve() if build_dir else tex.parent / "build") / f"{tex.stem}.log"


def compile_pdf(tex_path, pdf_out, build_dir=None, engine=None, timeout=300):
    """Build `tex_path` with `engine` (default: tex_engine()) in `build_dir` (default: build/
    beside the tex), from a clean state, and copy the PDF atomically to `pdf_out`. On failure
    raise LatexError and leave `pdf_out` as it was. Returns Path(pdf_out)."""
    engine = engine or tex_engine()
    if engine is None:
        raise LatexError(NO_TEX)
    tex, pdf_out = Path(tex_path).resolve(), Path(pdf_out).resolve()
    build = build_log(tex, build_dir).parent
    built = build / f"{tex.stem}.pdf"
    if built == pdf_out:
        raise ValueError(f"pdf_out {pdf_out} must not be the build directory's own PDF")
    build.mkdir(parents=True, exist_ok=True)
    for suffix in GENERATED:  # a killed run leaves a truncated .aux that breaks the next one
        (build / (tex.stem + suffix)).unlink(missing_ok=True)
    if engine == "tectonic":  # fetches the packages it lacks on first use, then caches them
        cmd = ["tectonic", "--keep-logs", "--chatter", "minimal", "--outdir", str(build), tex.name]
    else:
        cmd = ["latexmk", "-norc", ENGINES[engine], "-interaction=nonstopmode", "-halt-on-error",
               "-file-line-error", f"-outdir={build}", f"-auxdir={build}", tex.name]
    env = dict(os.environ, max_print_line="1000", error_line="254", half_error_line="238")
    try:
        proc = subprocess.Popen(cmd, cwd=tex.parent, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except FileNotFoundError:
        raise LatexError(f"{cmd[0]} is not installed: {NO_TEX}") from None
    try:
        out = proc.communicate(timeout=timeout)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # latexmk and the TeX run it started
        proc.communicate()
        raise LatexError(f"{engine} on {tex} timed out after {timeout} s") from None
    log_path = build_log(tex, build)
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else ""
    if proc.returncode != 0 or not built.exists():
        # a fatal error can be missing from the log but is always on the terminal
        detail = _first_error(log, tex) or _first_error(out, tex) or out[-3000:]
        raise LatexError(f"{engine} failed on {tex} (log: {log_path}):\n{detail}")
    lost = re.findall(r"^Missing character: .*$", log, re.M)
    if lost:
        raise LatexError(f"{engine} dropped characters in {tex}:\n" + "\n".join(lost[:10]))
    with open(built, "rb") as src:
        atomic_write(pdf_out, lambda f: shutil.copyfileobj(src, f), mode="wb")
    return pdf_out
