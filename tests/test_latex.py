"""LaTeX: escaping, the Jinja2 environment, and every corpus character reaching the PDF."""

import itertools
import re
import shutil
import subprocess
import time
import unicodedata

import jinja2
import pytest

from rnnrepro.report.latex import (
    LIGATURES,
    LINE,
    LONG_WORD,
    PASS,
    Latex,
    LatexError,
    compile_pdf,
    environment,
    escape,
    escape_sample,
    num,
    pct,
    sample_cell,
    table_row,
    text_cell,
    tt,
)

needs_tex = pytest.mark.skipif(not (shutil.which("latexmk") and shutil.which("pdftotext")),
                               reason="needs latexmk and pdftotext (texlive, poppler-utils)")

SPECIALS = "\\{}%$&#_^~"
OTHER_ASCII = "'\"<>|`[]"
TYPOGRAPHY = "’‘“”«»–—…"
UNPRINTABLE = "Ж中😀\ufeff\x07\x00\r\u200b\u0301"  # no glyph in T1/TS1: a <U+XXXX> placeholder


def box(ch):
    return rf"\texttt{{\textlangle U+{ord(ch):04X}\textrangle}}"


@pytest.fixture(scope="module")
def vocab(corpus_path):
    return sorted(set(corpus_path.read_text(encoding="utf-8")))  # the BOM stays in


# -- escape -------------------------------------------------------------------------------

@pytest.mark.parametrize("ch, tex", [
    ("\\", r"\textbackslash{}"), ("{", r"\{"), ("}", r"\}"), ("%", r"\%"), ("$", r"\$"),
    ("&", r"\&"), ("#", r"\#"), ("_", r"\_"), ("^", r"\textasciicircum{}"),
    ("~", r"\textasciitilde{}"), ("[", "{[}"), ("]", "{]}"), ("'", r"\textquotesingle{}"),
    ('"', r"\textquotedbl{}"), ("`", r"\textasciigrave{}"), ("<", r"\textless{}"),
    (">", r"\textgreater{}"), ("|", r"\textbar{}"),
    ("’", r"\textquoteright{}"), ("‘", r"\textquoteleft{}"), ("“", r"\textquotedblleft{}"),
    ("”", r"\textquotedblright{}"), ("«", r"\guillemotleft{}"), ("»", r"\guillemotright{}"),
    ("–", r"\textendash{}"), ("—", r"\textemdash{}"), ("…", r"\textellipsis{}"),
    ("\n", r"\textparagraph{}"), ("\t", r"\textrightarrow{}"), ("\u00a0", "~"),
    ("ß", r"\ss{}"), ("é", r"\'{e}"), ("Ä", r'\"{A}'), ("ç", r"\c{c}"), ("ï", r'\"{\i}'),
    ("ą", r"\k{a}"), ("ő", r"\H{o}"), ("č", r"\v{c}"), ("ø", r"\o{}"),
])
def test_special_characters_become_text_commands(ch, tex):
    assert escape(ch) == tex
    assert escape(f"a{ch}b") == f"a{tex}b"


@pytest.mark.parametrize("ch", UNPRINTABLE + "ệ\x7f\x85\ud800\U000e0001")
def test_characters_the_fonts_lack_become_placeholders(ch):
    assert escape(ch) == box(ch)  # ệ has two accents: no T1 glyph either


def test_the_whitelist_is_exactly_the_safe_ascii():
    assert PASS == set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                       " !()*+,-./:;=?@")
    for ch in PASS:
        assert escape(ch) == ch


def test_every_corpus_character_is_whitelisted_or_mapped(vocab):
    assert len(vocab) == 87 and "\ufeff" in vocab and "\n" in vocab
    mapped = {"\n": r"\textparagraph{}", "#": r"\#", "$": r"\$", "%": r"\%", "[": "{[}",
              "]": "{]}", "_": r"\_", "‘": r"\textquoteleft{}", "’": r"\textquoteright{}",
              "“": r"\textquotedblleft{}", "”": r"\textquotedblright{}", "\ufeff": box("\ufeff")}
    assert set(vocab) - PASS == set(mapped)  # a new character must be added here on purpose
    for ch in vocab:
        assert escape(ch) == mapped.get(ch, ch)


def test_output_is_ascii_with_no_bare_specials():
    text = "".join(map(chr, range(0, 0x3000, 7))) + SPECIALS + TYPOGRAPHY + UNPRINTABLE + "😀"
    out = escape(text).replace("%\n", "")  # the line breaks of long output
    assert out.isascii()
    assert not re.search(r"(?<!\\)[%$&#_]", out)
    depth = 0
    for i, c in enumerate(out):  # braces balance (escaped \{ \} do not count)
        if c in "{}" and out[i - 1] != "\\":
            depth += 1 if c == "{" else -1
            assert depth >= 0
    assert depth == 0


def test_long_output_is_split_into_short_source_lines():
    for text in ("x" * 5000, "a " * 3000, "中" * 500, "-" * 3000):
        out = escape(text)
        assert "%\n" in out and max(map(len, out.split("\n"))) < LINE + 60
        assert not any(line.startswith(" ") for line in out.split("\n"))  # TeX would drop it
    assert "\n" not in escape("short text " * 40)


@pytest.mark.parametrize("pair", sorted(LIGATURES))
def test_ligature_pairs_are_kept_apart(pair):
    assert escape(pair) == escape(pair[0]) + r"\kern0pt " + escape(pair[1])


def test_values_none_numbers_and_safe_strings():
    assert escape(None) == "" and escape(3) == "3" and escape(-1.5) == "-1.5"
    assert type(escape("a&b")) is str  # a plain string: + and f-strings in Python just work
    assert "\\textbf{" + escape("a_b") + "}" == r"\textbf{a\_b}"
    assert escape(escape("50%")) == r"50\textbackslash{}\%"  # a plain str is always text
    assert escape(Latex(r"\textbf{x}")) == r"\textbf{x}"  # Latex/Markup is LaTeX already
    assert Latex(r"\textbf{%s}") % "a_b" == r"\textbf{a\_b}"  # LaTeX escaping, not HTML
    assert Latex(r"\emph{x}") + "&" == r"\emph{x}\&"


def test_escape_sample_keeps_whitespace_visible():
    assert escape_sample("a  b") == r"a\ \ b"
    assert escape_sample("a\tb\nc") == r"a\textrightarrow{}b\textparagraph{}c"
    assert escape_sample("a\nb", breaks=True) == r"a\textparagraph{}\newline b"
    assert escape_sample(None) == ""
    assert escape_sample("’x_ 中") == r"\textquoteright{}x\_\ " + box("中")


def test_a_long_word_may_break_anywhere_and_best_at_a_seam():
    word = "x" * LONG_WORD
    assert escape(word) == word and escape(f"{word} {word}") == f"{word} {word}"
    assert escape("abc" * 7) == r"\penalty200{}".join("abc" * 7)
    path = "results/tables/a_file_name_of_its_own.csv"
    out = escape(path)
    assert out.startswith(r"r\penalty200{}e") and r"/\allowbreak{}t" in out
    assert r"\_\allowbreak{}f" in out and out.endswith(r"s\penalty200{}v")
    assert escape("-" * 22) == r"-\kern0pt \allowbreak{}" * 21 + "-"  # ligatures kept apart too


def test_tt_breaks_names_after_their_seams():
    assert tt("lstm_adam_lr01") == r"\texttt{lstm\_\allowbreak{}adam\_\allowbreak{}lr01}"
    assert tt("a/b.py") == r"\texttt{a/\allowbreak{}b.\allowbreak{}py}"
    assert tt("50%") == r"\texttt{50\%}" and tt(None) == r"\texttt{}"
    assert tt(Latex(r"\emph{x}")) == r"\texttt{\emph{x}}"


def test_a_long_cell_is_cut_into_rows_of_whole_lines():
    assert table_row([1, "a&b", sample_cell("xy z", 10)]) == r"1 & a\&b & x\allowbreak{}y" \
        r"\allowbreak{}\textvisiblespace{}\allowbreak{}z \\"
    rows = table_row([7, sample_cell("a" * 25, 4), sample_cell(None, 4)], lines=3).split("\n")
    assert len(rows) == 3  # 12 + 12 + 1 characters: whole lines of 4 in every row but the last
    assert rows[0].startswith("7 & a\\allowbreak{}a") and rows[0].endswith(" &  \\\\")
    assert rows[1] == " & " + r"\allowbreak{}".join("a" * 12) + r" &  \\" and rows[2] == r" & a &  \\"
    prose = table_row([text_cell("the quick brown fox jumps", 6), "x"], lines=2).split("\n")
    assert prose == [r"the quick & x \\", r"brown fox &  \\", r"jumps &  \\"]  # cut after spaces
    assert table_row([text_cell("y" * 9, 2)], lines=2).split("\n") == ["yyyy \\\\", "yyyy \\\\", "y \\\\"]


# -- num, pct -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, digits, tex", [
    (540241, 3, r"540\,241"), (1234, 3, "1234"), (12345, 3, r"12\,345"),
    (-1234567, 3, r"\ensuremath{-}1\,234\,567"), (0, 3, "0"),
    (0.5, 3, "0.500"), (0.123456, 3, "0.123"), (3.14159, 2, "3.1"), (100.0, 3, "100"),
    (999.7, 3, "1000"), (12345.6, 3, r"12\,346"), (-0.0, 3, "0.00"),
    (-0.25, 2, r"\ensuremath{-}0.25"),
    (1.234e-5, 3, r"\ensuremath{1.23\times10^{-5}}"), (2e20, 2, r"\ensuremath{2.0\times10^{20}}"),
    (float("nan"), 3, "NaN"), (float("-inf"), 3, r"\ensuremath{-\infty}"), (None, 3, "--"),
])
def test_num(value, digits, tex):
    assert num(value, digits) == tex


def test_num_refuses_non_numbers():
    for bad in ("3", True, [1]):
        with pytest.raises(TypeError):
            num(bad)


def test_pct():
    assert pct(0.7034) == r"70.3\,\%"
    assert pct(0.7034, 2) == r"70.34\,\%"
    assert pct(1) == r"100.0\,\%"
    assert pct(-0.0004) == r"0.0\,\%"
    assert pct(-0.5) == r"\ensuremath{-}50.0\,\%"
    assert pct(None) == "--"


# -- the Jinja2 environment ---------------------------------------------------------------

def render(tmp_path, source, **values):
    (tmp_path / "t.tex.j2").write_text(source, encoding="utf-8")
    return environment(tmp_path).get_template("t.tex.j2").render(**values)


def test_environment_escapes_every_value_by_default(tmp_path):
    source = ("\\section{((( title )))}\n"
              "((= a comment, and no blank line for it =))\n"
              "  ((* for x in xs *))\n"
              "\\item ((( x )))\n"
              "  ((* endfor *))\n"
              "((( raw|latex ))) ((( raw|safe ))) ((( n|num ))) ((( f|num(2) ))) ((( p|pct )))\n"
              "((( xs|join(', ') ))) ((( [n|num, '&']|join('; ') ))) ((( missing_ok )))\n"
              "((( t|sample ))) ((( t|e ))) ((( t|escape|escape )))\n"
              "{% not jinja %} {{ nor this }} # nor this\n")
    out = render(tmp_path, source, title="50% of A&B", xs=["a_1", "b^2"], raw=r"\LaTeX{}",
                 n=540241, f=0.0123, p=0.703, missing_ok=None, t="a  b")
    assert out == ("\\section{50\\% of A\\&B}\n"
                   "\\item a\\_1\n"
                   "\\item b\\textasciicircum{}2\n"
                   "\\LaTeX{} \\LaTeX{} 540\\,241 0.012 70.3\\,\\%\n"
                   "a\\_1, b\\textasciicircum{}2 540\\,241; \\& \n"
                   "a\\ \\ b a  b a  b\n"
                   "{% not jinja %} {{ nor this }} # nor this\n")


def test_concatenation_in_an_expression_is_escaped_again(tmp_path):
    # `~` makes a plain string: its LaTeX is escaped, visibly, rather than trusted
    assert render(tmp_path, "((( n|num ~ ' m' )))", n=12345) == r"12\textbackslash{},345 m"


def test_a_parenthesis_right_before_a_tag_is_text(tmp_path):
    out = render(tmp_path, "(((( n ))) jobs) ((((( n ))))) ((((* if n *))x((* endif *)))"
                           " ((( (n + 1) * 2 ))) ((( n ))))", n=3)
    assert out == "{(}3 jobs) {(}{(}3)) {(}{(}x) 8 3)"


def test_macros_call_and_set_blocks_are_latex_not_text(tmp_path):
    (tmp_path / "macros.tex.j2").write_text(
        "((* macro fig(path, caption) *))\\includegraphics{((( path )))}"
        "\\caption{((( caption )))}((* endmacro *))\n"
        "((* macro box() *))\\fbox{((( caller() )))}((* endmacro *))\n")
    out = render(tmp_path, "((* from 'macros.tex.j2' import fig, box *))\n"
                           "((( fig('a_b.pdf', '50% & more') )))\n"
                           "((* call box() *))x_((( v )))((* endcall *))\n"
                           "((* set s *))s: ((( v )))((* endset *))((( s )))\n", v="$5")
    assert out == ("\\includegraphics{a\\_b.pdf}\\caption{50\\% \\& more}\n"
                   "\\fbox{x_\\$5}s: \\$5\n")  # trim_blocks ate the newline after endcall
    assert type(out) is str  # render() gives a plain string: + and % on it are not escaping


def test_paths_and_labels_go_in_verbatim_or_not_at_all(tmp_path):
    assert render(tmp_path, "((( p|path )))", p="/r/fig_04-a.1.pdf") == "/r/fig_04-a.1.pdf"
    for bad in ("my figure.pdf", "50%.pdf", "~/a.pdf", "{a}", "a\\b", "é.pdf", ""):
        with pytest.raises(ValueError, match="cannot be a LaTeX file name"):
            render(tmp_path, "((( p|path )))", p=bad)


def test_a_missing_value_is_an_error(tmp_path):
    with pytest.raises(jinja2.UndefinedError, match="missing"):
        render(tmp_path, "x ((( missing ))) y")
    with pytest.raises(jinja2.UndefinedError):
        render(tmp_path, "((( run.loss|num )))", run={})
    with pytest.raises(jinja2.UndefinedError):
        render(tmp_path, "((* for r in rows *))((( r )))((* endfor *))")


# -- compiling ----------------------------------------------------------------------------

DOC = r"""\documentclass{article}
((( preamble )))
\hyphenpenalty=10000 \exhyphenpenalty=10000 \pagestyle{empty}
\begin{document}
\tableofcontents
\section{((( title )))}
BEGIN((( pairs|sample )))END

((( lines|sample(breaks=True) )))

\begin{tabular}{|p{0.8\linewidth}|}
((( title ))) \\
\end{tabular}
\end{document}
"""


def visible(text):
    """What pdftotext should show for `text`, whitespace left out."""
    shown = {"\n": "¶", "\t": "→", **{ch: f"〈U+{ord(ch):04X}〉" for ch in UNPRINTABLE}}
    return norm("".join(shown.get(ch, ch) for ch in text))


def norm(text):
    return "".join(unicodedata.normalize("NFKC", text).split())  # … -> ..., ligature fi -> fi


def pdftotext(pdf):
    # -raw: the default mode joins a word ending in "-" at a line end with the next one
    return subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.slow
@needs_tex
@pytest.mark.parametrize("engine", ["pdflatex", "lualatex"])
def test_every_character_reaches_the_pdf(tmp_path, vocab, engine):
    chars = sorted(set(vocab) | set(SPECIALS + OTHER_ASCII + TYPOGRAPHY + UNPRINTABLE + "ßéÉç\t"))
    title = " ".join(chars)  # with room to break the lines
    # every ordered pair, so no two neighbours can merge into a ligature or an accent
    pairs = " ".join(a + b for a, b in itertools.product(chars, repeat=2))
    (tmp_path / "doc.tex").write_text(
        environment(tmp_path).from_string(DOC).render(title=title, pairs=pairs,
                                                      lines="one\ntwo\n\nthree"),
        encoding="utf-8")
    pdf = compile_pdf(tmp_path / "doc.tex", tmp_path / "out" / "doc.pdf", engine=engine)
    text = norm(pdftotext(pdf))
    assert "BEGIN" + visible(pairs) + "END" in text
    # contents, heading, table cell, and the pairs " x" (space first) in a row
    assert text.count(visible(title)) == 4
    assert "one¶two¶¶three" in text
    for word in ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789",
                 "‘’“”", "Éßçé", "〈U+FEFF〉", "〈U+4E2D〉", "〈U+1F600〉", "〈U+0416〉"):
        assert norm(word) in text


def write_doc(tmp_path, body, **values):
    tex = tmp_path / "doc.tex"
    tex.write_text(environment(tmp_path).from_string(
        "\\documentclass{article}\n((( preamble )))\\usepackage{graphicx}\\begin{document}\n" + body
        + "\n\\end{document}\n").render(name="Hänsel & Gretel", bad=r"x \undefinedmacro y",
                                          **values), encoding="utf-8")
    return tex


@pytest.mark.slow
@needs_tex
def test_a_failure_names_the_first_error_and_keeps_the_previous_pdf(tmp_path):
    out = tmp_path / "report.pdf"
    compile_pdf(write_doc(tmp_path, "Hello ((( name ))).\n\\label{a}\\ref{a}"), out)
    before = out.read_bytes()
    assert "Hello Hänsel & Gretel." in pdftotext(out)

    tex = write_doc(tmp_path, "Hello ((( name ))).\n((( bad|latex )))")
    with pytest.raises(LatexError) as err:
        compile_pdf(tex, out)
    msg = str(err.value)
    assert "doc.tex:8: Undefined control sequence." in msg
    assert "l.8 x \\undefinedmacro" in msg  # TeX's own context line
    assert "doc.tex:8: x \\undefinedmacro y" in msg  # the source line
    assert out.read_bytes() == before

    tex = write_doc(tmp_path, "Hello\n\\textbf{((( name )))\n\nmore")  # a missing }
    with pytest.raises(LatexError) as err:
        compile_pdf(tex, out)
    msg = str(err.value)
    assert "File ended while scanning use of \\textbf" in msg
    assert "doc.tex:8: \\textbf{H\\\"{a}nsel \\& Gretel" in msg
    assert out.read_bytes() == before

    with pytest.raises(LatexError, match="not set up for use with LaTeX"):
        compile_pdf(write_doc(tmp_path, "((( '中'|latex )))"), out)  # raw Unicode, unescaped
    assert out.read_bytes() == before

    # a fatal error that only reaches the terminal, not the log
    with pytest.raises(LatexError, match="! Unable to read an entire line"):
        compile_pdf(write_doc(tmp_path, "((( long|latex )))", long="x" * 250_000), out)
    assert out.read_bytes() == before


@pytest.mark.slow
@needs_tex
def test_a_figure_with_an_underscore_in_its_path(tmp_path):
    fig = compile_pdf(write_doc(tmp_path, "figure"), tmp_path / "my_figs" / "fig_04-a.pdf")
    compile_pdf(write_doc(tmp_path, "\\begin{figure}\\includegraphics[width=2cm]{((( p|path )))}"
                                    "\\caption{((( name )))}\\label{((( k|path )))}\\end{figure}"
                                    "See ((( k ))) in \\ref{((( k|path )))}.",
                          p=fig, k="fig:fig_04-a"), tmp_path / "doc.pdf")
    assert "See fig:fig_04-a in 1." in pdftotext(tmp_path / "doc.pdf")


@pytest.mark.slow
@needs_tex
def test_a_rerun_after_a_failure_or_a_killed_run_succeeds(tmp_path):
    out, build = tmp_path / "report.pdf", tmp_path / "build"
    body = "\\tableofcontents\n\\section{One}\\label{one}\nSee \\ref{one}: ((( name ))).\n"
    with pytest.raises(LatexError):
        compile_pdf(write_doc(tmp_path, body + "((( bad|latex )))"), out, build_dir=build)
    assert not out.exists()
    compile_pdf(write_doc(tmp_path, body), out, build_dir=build)
    assert "See 1: Hänsel & Gretel." in pdftotext(out)
    # a run killed while writing leaves a truncated .aux; plain latexmk then fails on it
    (build / "doc.aux").write_text("\\relax\n\\newlabel{one}{{1}{1")
    (build / "doc.toc").write_text("\\contentsline {section}{\\numberline {1}On")
    compile_pdf(tmp_path / "doc.tex", out, build_dir=build)
    assert "See 1: Hänsel & Gretel." in pdftotext(out)


@pytest.mark.slow
@needs_tex
def test_dropped_characters_and_hangs_are_errors(tmp_path):
    out = tmp_path / "report.pdf"
    # lualatex only logs a character its font lacks; compile_pdf makes that an error
    with pytest.raises(LatexError, match="(?s)dropped characters.*U\\+4E2D"):
        compile_pdf(write_doc(tmp_path, "((( '中'|latex )))"), out, engine="lualatex")
    start = time.monotonic()
    with pytest.raises(LatexError, match="timed out after 2 s"):
        compile_pdf(write_doc(tmp_path, "\\def\\x{\\x}\\x"), out, timeout=2)
    assert time.monotonic() - start < 10
    assert not out.exists()


def test_the_build_pdf_cannot_be_the_output(tmp_path):
    (tmp_path / "doc.tex").write_text("")
    with pytest.raises(ValueError):
        compile_pdf(tmp_path / "doc.tex", tmp_path / "b" / "doc.pdf", build_dir=tmp_path / "b")


def test_the_engine_is_latexmk_with_pdflatex_else_tectonic_else_a_clear_error(tmp_path, monkeypatch):
    """Which TeX compile_pdf picks from PATH (stand-in executables: only their presence is
    read here; tectonic itself is not installed on this machine kind)."""
    from rnnrepro.report import latex

    def path_with(*names):
        folder = tmp_path / "-".join(names or ("none",))
        folder.mkdir()
        for name in names:
            (folder / name).write_text("#!/bin/sh\nexit 1\n")
            (folder / name).chmod(0o755)
        monkeypatch.setenv("PATH", str(folder))

    path_with("latexmk", "pdflatex", "tectonic")
    assert latex.tex_engine() == "pdflatex"
    path_with("latexmk", "tectonic")  # latexmk without pdflatex cannot build the report
    assert latex.tex_engine() == "tectonic"
    path_with()
    assert latex.tex_engine() is None
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    with pytest.raises(LatexError, match=r"no TeX on PATH \(latexmk with pdflatex, or tectonic\)"):
        compile_pdf(doc, tmp_path / "doc.pdf")
    assert not (tmp_path / "doc.pdf").exists()
